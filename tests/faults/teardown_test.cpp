// File: teardown_test.cpp
//
// Interpreters going away while host threads call them, through the host API (the ABI
// level is tests/interpreter/interpreter_finalize_test.cpp):
//  - a ReplicatedObj whose InterpreterManager handle is destroyed while threads call it:
//    direct calls go on (the object keeps the interpreters alive), submit() is refused
//    with FAILED_PRECONDITION, calls queued at that moment are CANCELLED, and the
//    interpreters are finalized once the last user is gone, and host tensors holding
//    weights they loaded can still be released;
//  - a standalone Interpreter destroyed while threads call Objs of it: the calls in
//    flight finish with their results, later ones are FAILED_PRECONDITION, never a crash.
// Afterwards the process starts and serves new interpreters.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "pyfleet/pyfleet.h"
#include "tests/faults/fault_test_util.h"

namespace pyfleet {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using testing::ErrorOf;
using testing::ReplicateFaultFunction;

using Clock = std::chrono::steady_clock;

TEST(ManagerTeardownTest, ReplicatedObjOutlivesItsManagerHandleWhileThreadsCallIt) {
  auto manager = std::make_unique<InterpreterManager>(2);
  testing::RegisterFaultFunctions(*manager);
  ReplicatedObj add = ReplicateFaultFunction(*manager, "add");
  ReplicatedObj model = manager->loadPackage(PYFLEET_HOST_PACKAGES "/mlp.pt").loadPickle("model", "model.pkl");
  const at::Tensor x = at::ones({3, 16});
  at::Tensor expected = model({x}).toTensor();
  // Its autograd graph holds the model's weights, storages over the package loaded in an
  // interpreter: released below, after that interpreter is gone.
  ASSERT_TRUE(expected.requires_grad());

  std::atomic<bool> manager_gone{false}, stop{false};
  std::atomic<int> direct_after{0}, submit_refused{0}, submit_cancelled{0}, submit_ok{0};
  std::mutex failures_mu;
  std::vector<std::string> failures;  // anything unexpected, reported after the join
  auto fail = [&](std::string what) {
    std::lock_guard<std::mutex> lock(failures_mu);
    failures.push_back(std::move(what));
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = 0; !stop.load(); ++i) {
        const bool gone = manager_gone.load();
        try {
          if (t % 2 == 0) {
            if (add({c10::IValue(i), c10::IValue(t)}).toInt() != i + t) fail("add: wrong result");
            if (!model({x}).toTensor().allclose(expected)) fail("mlp: wrong result");
            if (gone) ++direct_after;
          } else {
            std::future<c10::IValue> f = add.submit({c10::IValue(i), c10::IValue(t)});
            if (f.get().toInt() != i + t) fail("submit: wrong result");
            ++submit_ok;
          }
        } catch (const Error& e) {
          // Only the asynchronous path may fail, and only as the manager goes.
          if (t % 2 == 0) {
            fail("direct call failed: " + e.status().ToString());
          } else if (e.status().code() == absl::StatusCode::kFailedPrecondition) {
            ++submit_refused;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          } else if (e.status().code() == absl::StatusCode::kCancelled) {
            ++submit_cancelled;
          } else {
            fail("submit failed: " + e.status().ToString());
          }
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  manager.reset();  // the handle goes; add and model keep the interpreters
  manager_gone = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  for (std::thread& t : threads) t.join();
  for (const std::string& f : failures) ADD_FAILURE() << f;
  EXPECT_GT(direct_after.load(), 0) << "no direct call ran after the manager handle was destroyed";
  EXPECT_GT(submit_ok.load(), 0);
  EXPECT_GT(submit_refused.load(), 0) << "submit() after the manager went must be refused";
  Error refused = ErrorOf([&] { add.submit({c10::IValue(1), c10::IValue(2)}); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("InterpreterManager has been destroyed"));
  EXPECT_EQ(add({c10::IValue(40), c10::IValue(2)}).toInt(), 42);

  // The last users go: the interpreters are finalized. The process starts new ones.
  add = ReplicatedObj();
  model = ReplicatedObj();
  // Host tensors still holding storages that a finalized interpreter loaded are released
  // without touching it (Note [Storages that outlive their interpreter] in
  // interpreter/importer/package_importer.h): this used to be a SIGSEGV.
  expected = at::Tensor();
  InterpreterManager next(1);
  testing::RegisterFaultFunctions(next);
  EXPECT_EQ(ReplicateFaultFunction(next, "add")({c10::IValue(1), c10::IValue(2)}).toInt(), 3);
}

TEST(InterpreterTeardownTest, DestroyedWhileThreadsCallItsObjs) {
  auto libraries = NativeLibraries::create();
  InterpreterConfig config;
  config.modules.push_back(ModuleSource{"fault_functions", testing::FaultFunctionsSource()});
  std::unique_ptr<Interpreter> interp = Interpreter::create(libraries, config);
  interp->run("import time\n");
  Obj add = interp->global("fault_functions", "add");
  Obj sleep = interp->global("time", "sleep");

  // One call is inside Python (time.sleep, GIL released) when the interpreter goes:
  // ~Interpreter waits for it to return, then finalizes.
  std::promise<void> sleeping;
  std::future<std::string> in_flight = std::async(std::launch::async, [&] {
    sleeping.set_value();
    try {
      sleep({c10::IValue(0.3)});
      return std::string("returned");
    } catch (const Error& e) {
      return e.status().ToString();
    }
  });
  sleeping.get_future().wait();

  std::atomic<bool> gone{false};
  std::atomic<int> ok{0}, refused{0};
  std::mutex failures_mu;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = 0;; ++i) {
        try {
          if (add({c10::IValue(i), c10::IValue(t)}).toIValue().toInt() != i + t) {
            std::lock_guard<std::mutex> lock(failures_mu);
            failures.push_back("wrong result");
          }
          ++ok;
        } catch (const Error& e) {
          if (e.status().code() != absl::StatusCode::kFailedPrecondition) {
            std::lock_guard<std::mutex> lock(failures_mu);
            failures.push_back(e.status().ToString());
          }
          ++refused;
          if (gone.load()) return;  // refused after the interpreter went: done
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto start = Clock::now();
  interp.reset();  // finalizes once the sleeping call and the adds in flight return
  gone = true;
  const auto waited = Clock::now() - start;
  for (std::thread& t : threads) t.join();
  for (const std::string& f : failures) ADD_FAILURE() << f;
  EXPECT_EQ(in_flight.get(), "returned");
  EXPECT_GE(waited, std::chrono::milliseconds(100)) << "~Interpreter did not wait for the call in flight";
  EXPECT_GT(ok.load(), 0);
  EXPECT_GE(refused.load(), 3);
  // Objs of the finalized interpreter are inert: FAILED_PRECONDITION, also for repr.
  Error e = ErrorOf([&] { add({c10::IValue(1), c10::IValue(1)}); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorOf([&] { add.repr(); }).status().code(), absl::StatusCode::kFailedPrecondition);
  add = Obj();  // released after finalize: nothing to do
  sleep = Obj();

  // The process starts and serves a new interpreter with the same libraries.
  std::unique_ptr<Interpreter> next = Interpreter::create(libraries, config);
  EXPECT_EQ(next->global("fault_functions", "add")({c10::IValue(20), c10::IValue(22)}).toIValue().toInt(), 42);
}

}  // namespace
}  // namespace pyfleet
