// File: dispatcher.h
//
// Dispatcher: the asynchronous side of a manager (ReplicatedObj::submit). A bounded
// queue, worker threads that take calls from it and run each on a free interpreter, and
// a watcher thread that enforces deadlines and cancellation (Note [Deadlines and
// interruption] in pyfleet/call_options.h).
//
//   dispatcher.submit(impl, {x}, {}, options, [](CallResult r) { ... });  // or throws
//
// Every call completes exactly once: with its result (a worker), or with
// DEADLINE_EXCEEDED / CANCELLED (the watcher, on time, even while it still runs), or
// with CANCELLED at shutdown. Lock order: mu_ -> an interpreter's GIL (the watcher
// interrupts a running call under mu_, so that the worker cannot start another call on
// that thread meanwhile); workers never hold mu_ while running a call.
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "pyfleet/call_options.h"
#include "pyfleet/replicated_obj.h"

namespace pyfleet::internal {

class ManagerState;
class ReplicatedObjImpl;

class Dispatcher {
 public:
  using Clock = std::chrono::steady_clock;

  // `manager` outlives the dispatcher (it owns it; shutdown() runs before it goes).
  Dispatcher(ManagerState* manager, size_t workers, size_t max_queue);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Dispatcher::submit()
  //
  // Queues self(*args, **kwargs) of `target`; `done` runs once with the outcome.
  // Throws pyfleet::Error RESOURCE_EXHAUSTED when max_queue calls wait already, and
  // FAILED_PRECONDITION after shutdown().
  void submit(std::shared_ptr<const ReplicatedObjImpl> target, std::vector<c10::IValue> args,
              std::unordered_map<std::string, c10::IValue> kwargs, const CallOptions& options,
              std::function<void(CallResult)> done);

  // Dispatcher::callHere()
  //
  // submit() and wait, without the hand-off: runs on the calling thread when an
  // interpreter is free and no call waits in the queue; else queues the call (throwing
  // as submit() does) and waits for a worker to run it. Deadlines and cancellation as
  // for submit(). Returns the outcome; never throws it.
  CallResult callHere(std::shared_ptr<const ReplicatedObjImpl> target, std::vector<c10::IValue> args,
                      std::unordered_map<std::string, c10::IValue> kwargs, const CallOptions& options);

  // Fails every queued call with CANCELLED, lets running ones finish, joins the threads.
  // Idempotent.
  void shutdown();

 private:
  struct Call;
  // A call the watcher completes, outside mu_.
  struct Finished {
    std::shared_ptr<Call> call;
    CallResult result;
    bool never_ran;
  };
  std::shared_ptr<Call> makeCall(std::shared_ptr<const ReplicatedObjImpl> target, std::vector<c10::IValue> args,
                                 std::unordered_map<std::string, c10::IValue> kwargs, const CallOptions& options,
                                 std::function<void(CallResult)> done);
  // Queues `call`; throws as submit() does.
  void enqueue(std::shared_ptr<Call> call);
  // A free interpreter for a worker with a call to take (Note [Workers take a call only
  // with a free interpreter]); -1 when stopping or when the queue emptied meanwhile.
  int takeInterpreterForQueue();
  void workerLoop();
  void watchLoop();
  // Runs `call` on interpreter `position` (taken from the balancer; this gives it back)
  // on this thread, unless it completed meanwhile. With `only_if_queue_empty`, returns
  // false without running it if calls wait in the queue (they go first).
  bool run(const std::shared_ptr<Call>& call, int position, bool only_if_queue_empty = false);
  // Expires, cancels and interrupts; adds the calls to complete (outside mu_) to `done`
  // and returns when to look again.
  Clock::time_point watchOnce(Clock::time_point now, std::vector<Finished>& done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void interruptLocked(Call& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the watcher if `call` needs it sooner than it will look anyway (Note [The
  // watcher sleeps through calls that end in time]).
  void wakeWatcherFor(const Call& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ManagerState* const manager_;
  const size_t max_queue_;

  absl::Mutex mu_;
  absl::CondVar work_cv_;   // a call was queued, or shutdown
  absl::CondVar watch_cv_;  // a deadline or a cancellation to watch, or shutdown
  std::deque<std::shared_ptr<Call>> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Call>> running_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stopping_flag_{false};  // stopping_, for workers waiting outside mu_
  // When the sleeping watcher wakes by itself (max: never); min while it is awake (it
  // looks at every call before it sleeps again).
  Clock::time_point watcher_wakes_ ABSL_GUARDED_BY(mu_) = Clock::time_point::min();

  absl::Mutex join_mu_;  // serializes shutdown()
  std::vector<std::thread> workers_;
  std::thread watcher_;
};

}  // namespace pyfleet::internal
