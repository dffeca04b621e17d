// File: replicated_obj_call_test.cpp
//
// ReplicatedObj::call(): a synchronous call with CallOptions that runs on the caller's
// thread when an interpreter is free and otherwise waits in the manager's bounded queue;
// and Note [Workers take a call only with a free interpreter] in dispatcher.cpp.
// Part of host_api_test (one process).
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <chrono>
#include <future>
#include <thread>

#include "pyfleet/pyfleet.h"
#include "tests/common/error_of.h"
#include "tests/runtime/host_api_test_env.h"

namespace pyfleet {
namespace {

using ::testing::HasSubstr;
using testing::ErrorOf;
using testing::HostPackage;
using testing::SharedManager;
using Clock = std::chrono::steady_clock;

ManagerOptions OneWorkerQueueOf(size_t max_queue) {
  ManagerOptions options;
  options.async_workers = 1;
  options.max_queue = max_queue;
  return options;
}

// threading.get_ident on every interpreter: the pthread that runs a call.
ReplicatedObj ThreadIdent(InterpreterManager& manager) {
  InterpreterSession session = manager.acquireOne();
  return manager.createMovable(session.global("threading", "get_ident"), &session);
}

int64_t ThisThread() { return static_cast<int64_t>(pthread_self()); }

TEST(ReplicatedObjCallTest, RunsOnTheCallingThreadWhenAnInterpreterIsFree) {
  InterpreterManager& manager = SharedManager();
  ReplicatedObj ident = ThreadIdent(manager);
  EXPECT_EQ(ident.call({}, {}).toInt(), ThisThread());
  ReplicatedObj model = manager.loadPackage(HostPackage("mlp")).loadPickle("model", "model.pkl");
  at::Tensor x = at::ones({2, 16});
  EXPECT_TRUE(at::equal(model.call({x}, {}).toTensor(), model({x}).toTensor()));
}

TEST(ReplicatedObjCallTest, WaitsInTheQueueForABusyInterpreterAndTheQueueStaysBounded) {
  InterpreterManager manager(1, std::make_shared<NoopEnvironment>(), OneWorkerQueueOf(1));
  ReplicatedObj sleeps = manager.loadPackage(HostPackage("sleeps")).loadPickle("model", "model.pkl");
  ReplicatedObj ident = ThreadIdent(manager);
  // The one interpreter is taken by a caller's own thread, not by the worker.
  std::future<double> running =
      std::async(std::launch::async, [&] { return sleeps.call({c10::IValue(0.4)}, {}).toDouble(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // This call waits in the queue (the worker does not take it to block on the busy
  // interpreter), and runs on the worker once the interpreter is free.
  std::future<int64_t> queued =
      std::async(std::launch::async, [&] { return ident.call({}, {}).toInt() - ThisThread(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // The queue (max_queue 1) is full: both forms fail fast.
  const Clock::time_point before = Clock::now();
  EXPECT_EQ(ErrorOf([&] { sleeps.submit({c10::IValue(0.0)}); }).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrorOf([&] { sleeps.call({c10::IValue(0.0)}, {}); }).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_LT(Clock::now() - before, std::chrono::milliseconds(100));
  EXPECT_DOUBLE_EQ(running.get(), 0.4);
  EXPECT_NE(queued.get(), 0) << "the queued call ran on its caller's thread, not on the worker";
  EXPECT_EQ(manager.metrics().rejected, 2u);
}

TEST(ReplicatedObjCallTest, DeadlineInterruptsACallOnTheCallersThread) {
  InterpreterManager manager(1, std::make_shared<NoopEnvironment>(), OneWorkerQueueOf(8));
  ReplicatedObj spins = manager.loadPackage(HostPackage("spins")).loadPickle("model", "model.pkl");
  ReplicatedObj echo = manager.loadPackage(HostPackage("echo")).loadPickle("model", "model.pkl");
  CallOptions options;
  options.timeout = std::chrono::milliseconds(100);
  const Clock::time_point start = Clock::now();
  Error e = ErrorOf([&] { spins.call({at::ones({1})}, options); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("deadline passed"));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(echo.call({c10::IValue(7)}, {}).toInt(), 7);
  EXPECT_EQ(manager.metrics().total.timeouts, 1u);
}

TEST(ReplicatedObjCallTest, PythonErrorKeepsItsType) {
  ReplicatedObj raising = SharedManager().loadPackage(HostPackage("raising")).loadPickle("model", "model.pkl");
  Error e = ErrorOf([&] { raising.call({at::ones({1})}, {}); });
  EXPECT_FALSE(e.pythonType().empty());
  EXPECT_FALSE(e.traceback().empty());
}

TEST(ReplicatedObjCallTest, HeldInterpretersDoNotStopQueuedCallsForever) {
  InterpreterManager manager(1, std::make_shared<NoopEnvironment>(), OneWorkerQueueOf(8));
  ReplicatedObj echo = manager.loadPackage(HostPackage("echo")).loadPickle("model", "model.pkl");
  // A session holds the one interpreter, idle, while its thread waits for a queued call:
  // the worker shares the interpreter after a while instead of waiting for it forever.
  InterpreterSession held = manager.acquireOne();
  std::future<c10::IValue> f = echo.submit({c10::IValue(5)});
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(f.get().toInt(), 5);
}

}  // namespace
}  // namespace pyfleet
