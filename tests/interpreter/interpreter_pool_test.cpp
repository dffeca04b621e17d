// N interpreters in one process (ctest runs N = 1, 2, 4, 8): each imports torch, numpy,
// json, decimal, sqlite3 and ctypes and runs a small torch.nn model, concurrently, and
// matches the reference Debian's python3 computed at build time.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "tests/interpreter/interpreter_test_env.h"

namespace pyfleet {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(InterpreterPoolTest, EveryInterpreterMatchesDebianPython) {
  auto& pool = testing::InterpreterPool::Get();
  const std::string reference = ReadFile(PYFLEET_WORKLOAD_REFERENCE);
  ASSERT_FALSE(reference.empty());
  std::vector<std::string> errors(pool.size());
  std::vector<std::thread> threads;
  for (int i = 0; i < pool.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        if (!pool.at(i).global("workload", "check")({reference}).toBool()) errors[i] = "check returned False";
      } catch (const Error& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < pool.size(); ++i) EXPECT_TRUE(errors[i].empty()) << "interpreter " << i << ": " << errors[i];
}

// N host threads, each driving its own interpreter at once, thousands of calls each:
// no deadlock, every result right.
TEST(InterpreterPoolTest, ThousandsOfConcurrentCallsAreCorrect) {
  auto& pool = testing::InterpreterPool::Get();
  constexpr int kCalls = 2000;
  std::vector<int> wrong(pool.size(), 0);
  std::vector<std::string> errors(pool.size());
  std::vector<std::thread> threads;
  for (int i = 0; i < pool.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        Obj f = pool.at(i).eval("lambda t, k: float((t * k).sum())");
        at::Tensor x = at::ones({8});
        for (int k = 0; k < kCalls; ++k) {
          if (f({x, k}).toDouble() != 8.0 * k) ++wrong[i];
        }
        pool.at(i).detachThread();
      } catch (const Error& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < pool.size(); ++i) {
    EXPECT_EQ(wrong[i], 0) << "interpreter " << i;
    EXPECT_TRUE(errors[i].empty()) << errors[i];
  }
}

TEST(InterpreterPoolTest, InterpreterIdentitiesAreDistinct) {
  auto& pool = testing::InterpreterPool::Get();
  for (int i = 0; i < pool.size(); ++i) {
    pool.at(i).run("import sys\npool_index = " + std::to_string(i) + "\n");
  }
  for (int i = 0; i < pool.size(); ++i) EXPECT_EQ(pool.at(i).eval("pool_index").toInt(), i);
}

}  // namespace
}  // namespace pyfleet
