// File: interpreter_test_env.h
//
// One pool of interpreters per test binary (interpreters cannot be torn down and made
// again cheaply; STYLE.md §7.6), created concurrently in SetUp by one thread each. The
// binaries get their main() from pool_main.cpp, which installs the pool with the size
// given on the command line (default 2); tests reach it through Get():
//
//   TEST(InterpreterTest, Something) {
//     Interpreter& interp = pyfleet::testing::InterpreterPool::Get().at(0);
//     EXPECT_EQ(interp.eval("6 * 7").toInt(), 42);
//   }
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pyfleet/interpreter.h"

namespace pyfleet::testing {

class InterpreterPool : public ::testing::Environment {
 public:
  static InterpreterPool& Install(int size) {
    pool_ = new InterpreterPool(size);
    ::testing::AddGlobalTestEnvironment(pool_);  // gtest owns it
    return *pool_;
  }
  static InterpreterPool& Get() { return *pool_; }

  void SetUp() override {
    libraries_ = NativeLibraries::create();
    InterpreterConfig config;
    config.extra_sys_path = {PYFLEET_TEST_SOURCE_DIR, PYFLEET_TEST_BINARY_DIR};
    config.modules = {{"pyfleet_injected", "ANSWER = 42\n", false}};
    interpreters_.resize(size_);
    std::vector<std::thread> threads;
    std::vector<std::string> errors(size_);
    for (int i = 0; i < size_; ++i) {
      threads.emplace_back([&, i] {
        try {
          interpreters_[i] = Interpreter::create(libraries_, config);
          interpreters_[i]->run("import torch\n");
        } catch (const Error& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < size_; ++i) ASSERT_TRUE(errors[i].empty()) << "interpreter " << i << ": " << errors[i];
  }

  // Interpreters stay alive until the process exits (see ARCHITECTURE.md §11).
  void TearDown() override {
    for (auto& interp : interpreters_) interp.release();
  }

  int size() const { return size_; }
  Interpreter& at(int i) { return *interpreters_.at(i); }
  NativeLibraries& libraries() { return *libraries_; }

 private:
  explicit InterpreterPool(int size) : size_(size) {}
  static inline InterpreterPool* pool_ = nullptr;
  int size_;
  std::shared_ptr<NativeLibraries> libraries_;
  std::vector<std::unique_ptr<Interpreter>> interpreters_;
};

}  // namespace pyfleet::testing
