// File: python_errors_test.cpp
//
// Model code that fails, through the host API (ReplicatedObj on a manager of 2
// interpreters): a raising model from a package, SystemExit, KeyboardInterrupt,
// MemoryError, RecursionError, and pure Python that never returns, stopped by a call
// deadline. Each failure is a pyfleet::Error with the code and Python type
// interpreter_abi.h's PyfleetCode table gives, the process goes on (SystemExit
// included: pyfleet never exits), and afterwards every interpreter serves again.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "pyfleet/pyfleet.h"
#include "tests/faults/fault_test_util.h"

namespace pyfleet {
namespace {

using ::testing::HasSubstr;
using testing::ErrorOf;
using testing::ExpectEveryInterpreterServes;
using testing::ReplicateFaultFunction;

class PythonFaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    manager_ = new InterpreterManager(2);
    testing::RegisterFaultFunctions(*manager_);
  }
  static void TearDownTestSuite() {
    delete manager_;
    manager_ = nullptr;
  }
  void TearDown() override { ExpectEveryInterpreterServes(*manager_); }

  // Calls `fn` once on each interpreter (sessions pinned to each) and returns the errors.
  static std::vector<Error> FailOnEveryInterpreter(const ReplicatedObj& fn, std::vector<c10::IValue> args) {
    std::vector<Error> errors;
    for (const Interpreter& interp : manager_->allInstances()) {
      InterpreterSession session = fn.acquireSession(&interp);
      errors.push_back(ErrorOf([&] { session.self(args); }));
    }
    return errors;
  }

  static InterpreterManager* manager_;
};
InterpreterManager* PythonFaultTest::manager_ = nullptr;

TEST_F(PythonFaultTest, RaisingModelIsInvalidArgumentWithTypeMessageAndTraceback) {
  ReplicatedObj model = manager_->loadPackage(PYFLEET_HOST_PACKAGES "/raising.pt").loadPickle("model", "model.pkl");
  for (int i = 0; i < 4; ++i) {  // both interpreters, twice
    Error e = ErrorOf([&] { model({at::ones({3})}); });
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(e.pythonType(), "builtins.ValueError");
    EXPECT_THAT(std::string(e.status().message()), HasSubstr("expected a 2-d input, got 1 dimensions"));
    EXPECT_THAT(e.traceback(), HasSubstr("_check"));
  }
  EXPECT_TRUE(model({at::ones({2, 2})}).toTensor().equal(at::ones({2, 2})));
}

TEST_F(PythonFaultTest, ModuleFunctionRaisingValueError) {
  ReplicatedObj fn = ReplicateFaultFunction(*manager_, "raise_value_error");
  for (const Error& e : FailOnEveryInterpreter(fn, {c10::IValue(7)})) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(e.pythonType(), "builtins.ValueError");
    EXPECT_THAT(std::string(e.status().message()), HasSubstr("bad input: 7"));
  }
}

TEST_F(PythonFaultTest, SystemExitIsAnErrorAndTheProcessLives) {
  const pid_t pid = ::getpid();
  ReplicatedObj fn = ReplicateFaultFunction(*manager_, "raise_system_exit");
  for (int code : {0, 3}) {
    for (const Error& e : FailOnEveryInterpreter(fn, {c10::IValue(code)})) {
      EXPECT_EQ(e.status().code(), absl::StatusCode::kUnknown);
      EXPECT_EQ(e.pythonType(), "builtins.SystemExit");
    }
  }
  // The same process: sys.exit reached neither exit() nor the host.
  EXPECT_EQ(ReplicateFaultFunction(*manager_, "pid")({}).toInt(), pid);
}

TEST_F(PythonFaultTest, KeyboardInterruptIsCancelled) {
  ReplicatedObj fn = ReplicateFaultFunction(*manager_, "raise_keyboard_interrupt");
  for (const Error& e : FailOnEveryInterpreter(fn, {})) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(e.pythonType(), "builtins.KeyboardInterrupt");
    EXPECT_THAT(std::string(e.status().message()), HasSubstr("interrupted by model code"));
  }
}

TEST_F(PythonFaultTest, MemoryErrorIsResourceExhausted) {
  ReplicatedObj fn = ReplicateFaultFunction(*manager_, "exhaust_memory");
  for (const Error& e : FailOnEveryInterpreter(fn, {})) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(e.pythonType(), "builtins.MemoryError");
  }
}

TEST_F(PythonFaultTest, RecursionErrorIsResourceExhaustedAndTheLimitStillHolds) {
  ReplicatedObj forever = ReplicateFaultFunction(*manager_, "recurse_forever");
  for (const Error& e : FailOnEveryInterpreter(forever, {})) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(e.pythonType(), "builtins.RecursionError");
    EXPECT_THAT(std::string(e.status().message()), HasSubstr("maximum recursion depth exceeded"));
  }
  // The recursion depth is back to 0: a recursion just under the limit works, and one
  // past it fails the same way again.
  ReplicatedObj recurse = ReplicateFaultFunction(*manager_, "recurse");
  for (const Interpreter& interp : manager_->allInstances()) {
    InterpreterSession session = recurse.acquireSession(&interp);
    EXPECT_EQ(session.self({c10::IValue(900)}).toIValue().toInt(), 900);
    EXPECT_EQ(ErrorOf([&] { session.self({c10::IValue(5000)}); }).pythonType(), "builtins.RecursionError");
  }
}

// ---- Deadlines stop pure Python -------------------------------------------------------

TEST_F(PythonFaultTest, InfiniteLoopsOnEveryInterpreterAreStoppedByTheirDeadlines) {
  ReplicatedObj spin = ReplicateFaultFunction(*manager_, "spin");
  ReplicatedObj echo = ReplicateFaultFunction(*manager_, "echo");
  const Metrics before = manager_->metrics();
  CallOptions options;
  options.timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::future<c10::IValue>> spinning;
  for (size_t i = 0; i < manager_->size(); ++i) spinning.push_back(spin.submit({}, options));
  for (std::future<c10::IValue>& f : spinning) {
    Error e = ErrorOf([&] { f.get(); });
    EXPECT_EQ(e.status().code(), absl::StatusCode::kDeadlineExceeded);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // Both loops were interrupted and returned (the futures completed at the deadline;
  // the interrupt reaches the loop when it next gets its interpreter's GIL): no
  // interpreter is busy or out of rotation, and each counted one timeout.
  auto busy = [&] {
    int64_t n = 0;
    for (const InterpreterMetrics& im : manager_->metrics().interpreters) n += im.busy_now;
    return n;
  };
  for (int i = 0; i < 500 && busy() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(busy(), 0) << "an interrupted loop did not return within 10 s";
  const Metrics after = manager_->metrics();
  EXPECT_EQ(after.stuck_interpreters, 0);
  for (size_t i = 0; i < after.interpreters.size(); ++i) {
    EXPECT_EQ(after.interpreters[i].timeouts - before.interpreters[i].timeouts, 1u) << "interpreter " << i;
  }
  // Calls on each of them (asynchronous and direct) work.
  EXPECT_EQ(echo.submit({c10::IValue(11)}).get().toInt(), 11);
  for (const Interpreter& interp : manager_->allInstances()) {
    InterpreterSession session = echo.acquireSession(&interp);
    EXPECT_EQ(session.self({c10::IValue(12)}).toIValue().toInt(), 12);
  }
}

// Code that swallows the deadline's TimeoutError cannot be stopped: its interpreter is
// taken out of rotation while the other serves every call, and comes back once the code
// returns.
TEST_F(PythonFaultTest, LoopSwallowingTheInterruptIsOutOfRotationWhileTheOtherServes) {
  char release[] = "/tmp/pyfleet-fault-release-XXXXXX";
  const int fd = ::mkstemp(release);
  ASSERT_GE(fd, 0);
  ::close(fd);
  ::unlink(release);  // created again below to release the loop
  ReplicatedObj stubborn = ReplicateFaultFunction(*manager_, "spin_ignoring_interrupts");
  ReplicatedObj echo = ReplicateFaultFunction(*manager_, "echo");
  CallOptions options;
  options.timeout = std::chrono::milliseconds(100);
  std::future<c10::IValue> f = stubborn.submit({c10::IValue(std::string(release))}, options);
  EXPECT_EQ(ErrorOf([&] { f.get(); }).status().code(), absl::StatusCode::kDeadlineExceeded);
  for (int i = 0; i < 100 && manager_->metrics().stuck_interpreters != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(manager_->metrics().stuck_interpreters, 1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(echo({c10::IValue(i)}).toInt(), i);  // the other interpreter
  std::ofstream(release).put('x');  // lets the loop return
  for (int i = 0; i < 250 && manager_->metrics().stuck_interpreters != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(manager_->metrics().stuck_interpreters, 0);
  std::remove(release);
}

}  // namespace
}  // namespace pyfleet
