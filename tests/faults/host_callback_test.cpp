// File: host_callback_test.cpp
//
// C++ exceptions thrown by user code that pyfleet calls back: an Environment whose
// configureInterpreter (or getExtraPythonPaths) throws fails the manager's construction
// with a pyfleet::Error, whatever it threw, and the process goes on and starts other
// managers; a submit() callback that throws loses its exception, not the worker thread.
// (The archive callbacks and the extension loader are noexcept at the ABI: a throwing
// one does not compile.)
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>

#include "pyfleet/pyfleet.h"
#include "tests/faults/fault_test_util.h"

namespace pyfleet {
namespace {

using ::testing::HasSubstr;
using testing::ErrorOf;
using testing::ReplicateFaultFunction;

// Runs Python in the interpreter it is given, then whatever `thrower` throws.
class ThrowingEnvironment : public Environment {
 public:
  explicit ThrowingEnvironment(std::function<void()> thrower) : thrower_(std::move(thrower)) {}
  void configureInterpreter(Interpreter* interp) override {
    ++calls_;
    interp->run("import torch\n");  // a real interpreter reached the hook
    thrower_();
  }
  std::atomic<int> calls_{0};

 private:
  std::function<void()> thrower_;
};

class ThrowingPaths : public Environment {
 public:
  const std::vector<std::string>& getExtraPythonPaths() override { throw std::out_of_range("no paths today"); }
  void configureInterpreter(Interpreter*) override {}
};

TEST(HostCallbackTest, ConfigureInterpreterThrowingStdExceptionIsAPyfleetError) {
  auto env = std::make_shared<ThrowingEnvironment>([] { throw std::runtime_error("bad configuration file"); });
  Error e = ErrorOf([&] { InterpreterManager manager(2, env); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("Environment::configureInterpreter threw"));
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("bad configuration file"));
  EXPECT_GE(env->calls_.load(), 1);
}

TEST(HostCallbackTest, ConfigureInterpreterThrowingANonStdExceptionIsAPyfleetError) {
  auto env = std::make_shared<ThrowingEnvironment>([] { throw 42; });
  Error e = ErrorOf([&] { InterpreterManager manager(1, env); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("not derived from std::exception"));
}

TEST(HostCallbackTest, ConfigureInterpreterThrowingAPyfleetErrorKeepsIt) {
  // E.g. a hook whose own Python code failed: its pyfleet::Error comes out unchanged.
  struct RunsBadPython : Environment {
    void configureInterpreter(Interpreter* interp) override { interp->run("import no_such_module_here\n"); }
  };
  Error e = ErrorOf([&] { InterpreterManager manager(1, std::make_shared<RunsBadPython>()); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(e.pythonType(), "builtins.ModuleNotFoundError");
}

TEST(HostCallbackTest, GetExtraPythonPathsThrowingIsAPyfleetError) {
  Error e = ErrorOf([&] { InterpreterManager manager(1, std::make_shared<ThrowingPaths>()); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("Environment::getExtraPythonPaths threw: no paths today"));
}

TEST(HostCallbackTest, ProcessServesAfterFailedManagers) {
  // Runs after (or without) the failures above in this process: a manager starts, serves.
  InterpreterManager manager(2);
  testing::RegisterFaultFunctions(manager);
  EXPECT_EQ(ReplicateFaultFunction(manager, "add")({c10::IValue(2), c10::IValue(40)}).toInt(), 42);
  testing::ExpectEveryInterpreterServes(manager);
}

TEST(HostCallbackTest, ThrowingSubmitCallbackLosesOnlyItsException) {
  InterpreterManager manager(1);
  testing::RegisterFaultFunctions(manager);
  ReplicatedObj add = ReplicateFaultFunction(manager, "add");
  std::atomic<int> ran{0};
  for (int i = 0; i < 20; ++i) {
    add.submit({c10::IValue(i), c10::IValue(1)}, [&, i](CallResult r) {
      ++ran;
      if (r.value().toInt() != i + 1) ran = -1000;
      if (i % 2 == 0) throw std::runtime_error("callback failed");
      throw 7;  // not even a std::exception
    });
  }
  for (int i = 0; i < 500 && ran.load() != 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(ran.load(), 20);
  // The worker survived its callbacks: asynchronous calls still complete.
  EXPECT_EQ(add.submit({c10::IValue(1), c10::IValue(2)}).get().toInt(), 3);
  EXPECT_EQ(manager.metrics().total.errors, 0u);
}

}  // namespace
}  // namespace pyfleet
