// File: pool_main.cpp
//
// The one main() of the test binaries that share an interpreter pool (interpreter_test,
// interpreter_pool_test, package_importer_test): GoogleTest takes its own flags, then the
// pool size comes from what is left, and the pool (interpreter_test_env.h) is installed
// as a global test environment.
//
//   interpreter_pool_test 4 --gtest_filter='InterpreterPoolTest.*'
//   interpreter_test --pool_size=2
//
// Default size: 2. A binary whose tests need a particular size gets its own ctest entry
// with the size on its command line (STYLE.md §7.6).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/interpreter/interpreter_test_env.h"

namespace {

constexpr int kDefaultPoolSize = 2;
constexpr int kMaxPoolSize = 64;

// Reads the pool size from the arguments GoogleTest left: "N" or "--pool_size=N".
// Returns 0 (after printing why) on anything else.
int PoolSizeFromArgs(int argc, char** argv) {
  int size = kDefaultPoolSize;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    const std::string flag = "--pool_size=";
    if (arg.rfind(flag, 0) == 0) arg = arg.substr(flag.size());
    char* end = nullptr;
    const long n = std::strtol(arg.c_str(), &end, 10);
    if (arg.empty() || *end != '\0' || n < 1 || n > kMaxPoolSize) {
      std::fprintf(stderr, "%s: bad argument '%s'; usage: %s [GTEST_FLAGS] [N | --pool_size=N] (1 <= N <= %d)\n",
                   argv[0], argv[i], argv[0], kMaxPoolSize);
      return 0;
    }
    size = static_cast<int>(n);
  }
  return size;
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);  // removes the --gtest_* flags it knows
  const int size = PoolSizeFromArgs(argc, argv);
  if (size == 0) return 2;
  pyfleet::testing::InterpreterPool::Install(size);
  return RUN_ALL_TESTS();
}
