// File: dispatcher.cpp — see dispatcher.h.
#include "runtime/src/dispatcher.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <future>
#include <optional>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "pyfleet/error.h"
#include "runtime/src/access.h"
#include "runtime/src/interpreter_core.h"
#include "runtime/src/manager_state.h"
#include "runtime/src/replicated_obj_impl.h"

namespace pyfleet::internal {
namespace {

using Clock = Dispatcher::Clock;
using Outcome = MetricsRecorder::Outcome;

// While a call with a Cancellation is in flight the watcher polls it this often.
constexpr auto kCancellationPoll = std::chrono::milliseconds(2);
// With nothing to watch, the watcher still wakes this often (see the Note below).
constexpr auto kWatcherIdleTimer = std::chrono::seconds(1);

// Note [The watcher sleeps through calls that end in time]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Most calls with a deadline end long before it (a server's 30 s timeout around a 1 ms
// model). Waking the watcher for each of them costs two context switches per call on a
// machine whose cores are busy with the calls themselves (80 us of a 0.9 ms request in
// pyfleet-serve, measured). So the watcher is woken only when a call needs it sooner
// than it will wake by itself (watcher_wakes_): a deadline earlier than its timer, or a
// cancellation to poll while it sleeps longer than the poll period. With nothing to
// watch it sleeps kWatcherIdleTimer, not forever: a call whose deadline is further off
// than that needs no signal (a woken watcher finding its call already ended would sleep
// forever again, and the next call would have to wake it). A timer that fires for
// calls that ended finds nothing to do and sets the next one.

// Note [Workers take a call only with a free interpreter]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Interpreters are taken by workers and also by callers' own threads (callHere(),
// operator(), sessions). A worker that popped a call and then found every interpreter
// busy would wait on a GIL with the call out of the queue: the queue would drain into
// blocked workers and max_queue would no longer bound what waits. So a worker first
// takes a free interpreter (LoadBalancer::acquireFree), then pops a call. One exception
// keeps the queue from waiting forever: an interpreter held by something else than a
// call of ours (a session kept open, perhaps idle, perhaps by the very thread that waits
// for the queued call) is shared once nothing was released for kShareHeldAfter.
constexpr absl::Duration kShareHeldAfter = absl::Milliseconds(200);

double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

Outcome OutcomeOf(const CallResult& r) {
  if (r.ok()) return Outcome::kOk;
  switch (r.error()->status().code()) {
    case absl::StatusCode::kDeadlineExceeded:
      return Outcome::kTimeout;
    case absl::StatusCode::kCancelled:
      return Outcome::kCancelled;
    default:
      return Outcome::kError;
  }
}

}  // namespace

struct Dispatcher::Call {
  std::shared_ptr<const ReplicatedObjImpl> target;
  std::vector<c10::IValue> args;
  std::unordered_map<std::string, c10::IValue> kwargs;
  std::function<void(CallResult)> done;
  std::shared_ptr<Cancellation> cancellation;
  Clock::time_point submitted;
  Clock::time_point deadline = Clock::time_point::max();

  // Set by whoever completes the call first (worker, watcher or shutdown).
  std::atomic<bool> completed{false};
  // Guarded by Dispatcher::mu_ once queued:
  bool running = false;
  int position = -1;            // the interpreter running it
  pthread_t thread{};           // the worker running it
  bool interrupted = false;     // the watcher raised TimeoutError in it
  Clock::time_point interrupted_at;
  bool took_out_of_rotation = false;

  // Runs `done` unless the call completed already; returns whether this completed it.
  bool complete(CallResult result) {
    if (completed.exchange(true, std::memory_order_acq_rel)) return false;
    try {
      done(std::move(result));
    } catch (...) {
      // A callback's exception has nowhere to go; the call itself is complete.
    }
    return true;
  }
};

Dispatcher::Dispatcher(ManagerState* manager, size_t workers, size_t max_queue)
    : manager_(manager), max_queue_(max_queue) {
  for (size_t i = 0; i < workers; ++i) workers_.emplace_back([this] { workerLoop(); });
  watcher_ = std::thread([this] { watchLoop(); });
}

Dispatcher::~Dispatcher() { shutdown(); }

std::shared_ptr<Dispatcher::Call> Dispatcher::makeCall(std::shared_ptr<const ReplicatedObjImpl> target,
                                                      std::vector<c10::IValue> args,
                                                      std::unordered_map<std::string, c10::IValue> kwargs,
                                                      const CallOptions& options, std::function<void(CallResult)> done) {
  auto call = std::make_shared<Call>();
  call->target = std::move(target);
  call->args = std::move(args);
  call->kwargs = std::move(kwargs);
  call->done = std::move(done);
  call->cancellation = options.cancellation;
  call->submitted = Clock::now();
  if (options.timeout > std::chrono::nanoseconds::zero()) call->deadline = call->submitted + options.timeout;
  return call;
}

void Dispatcher::submit(std::shared_ptr<const ReplicatedObjImpl> target, std::vector<c10::IValue> args,
                        std::unordered_map<std::string, c10::IValue> kwargs, const CallOptions& options,
                        std::function<void(CallResult)> done) {
  enqueue(makeCall(std::move(target), std::move(args), std::move(kwargs), options, std::move(done)));
}

void Dispatcher::enqueue(std::shared_ptr<Call> call) {
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    throw Error(absl::FailedPreconditionError("submit: the InterpreterManager has been destroyed"));
  }
  if (queue_.size() >= max_queue_) {
    manager_->metrics().recordRejected();
    throw Error(absl::ResourceExhaustedError(
        absl::StrCat("submit: the queue holds ", queue_.size(), " calls (ManagerOptions::max_queue)")));
  }
  queue_.push_back(call);
  manager_->metrics().setQueueDepth(static_cast<int64_t>(queue_.size()));
  work_cv_.Signal();
  wakeWatcherFor(*call);
}

CallResult Dispatcher::callHere(std::shared_ptr<const ReplicatedObjImpl> target, std::vector<c10::IValue> args,
                                std::unordered_map<std::string, c10::IValue> kwargs, const CallOptions& options) {
  // Whoever completes the call (this thread, a worker or the watcher) sets the promise;
  // shared, since the call may outlive this frame in the queue.
  auto promise = std::make_shared<std::promise<CallResult>>();
  std::future<CallResult> future = promise->get_future();
  std::shared_ptr<Call> call = makeCall(std::move(target), std::move(args), std::move(kwargs), options,
                                        [promise](CallResult result) { promise->set_value(std::move(result)); });
  const int position = manager_->balancer().tryAcquireFree();
  if (position < 0 || !run(call, position, /*only_if_queue_empty=*/true)) {
    try {
      enqueue(call);
    } catch (const Error& e) {
      return CallResult::failure(e);
    }
  }
  return future.get();
}

void Dispatcher::wakeWatcherFor(const Call& call) {
  if (call.deadline < watcher_wakes_ ||
      (call.cancellation != nullptr && watcher_wakes_ > Clock::now() + kCancellationPoll)) {
    watch_cv_.Signal();
  }
}

int Dispatcher::takeInterpreterForQueue() {
  LoadBalancer& balancer = manager_->balancer();
  for (;;) {
    const int position = balancer.acquireFree(kShareHeldAfter, stopping_flag_);
    if (position >= 0) return position;
    absl::MutexLock lock(&mu_);
    if (stopping_ || queue_.empty()) return -1;
    // Nothing was released for a while: share an interpreter held by something else
    // than our calls, if there is one (the Note above).
    std::vector<int64_t> ours(balancer.size(), 0);
    for (const std::shared_ptr<Call>& call : running_) ++ours[static_cast<size_t>(call->position)];
    for (size_t i = 0; i < balancer.limit(); ++i) {
      const int p = static_cast<int>(i);
      if (!balancer.outOfRotation(p) && balancer.load(p) > ours[i]) {
        balancer.acquireAt(p);
        return p;
      }
    }
  }
}

void Dispatcher::workerLoop() {
  LoadBalancer& balancer = manager_->balancer();
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) work_cv_.Wait(&mu_);
      if (queue_.empty()) break;  // stopping
    }
    const int position = takeInterpreterForQueue();
    if (position < 0) continue;  // stopping, or the queue emptied
    std::shared_ptr<Call> call;
    {
      absl::MutexLock lock(&mu_);
      if (!queue_.empty()) {
        call = std::move(queue_.front());
        queue_.pop_front();
        manager_->metrics().setQueueDepth(static_cast<int64_t>(queue_.size()));
      }
    }
    if (call == nullptr) {
      balancer.release(position);  // another worker took it, or it expired
      continue;
    }
    run(call, position);
  }
  // This thread is done with every interpreter: drop its thread states.
  for (Interpreter& interp : manager_->interpreters()) interp.detachThread();
}

bool Dispatcher::run(const std::shared_ptr<Call>& call, int position, bool only_if_queue_empty) {
  LoadBalancer& balancer = manager_->balancer();
  absl::Cleanup release = [&] { balancer.release(position); };
  {
    absl::MutexLock lock(&mu_);
    if (only_if_queue_empty && (!queue_.empty() || stopping_)) return false;
    if (call->completed.load(std::memory_order_acquire)) return true;  // expired while we got here
    call->running = true;
    call->position = position;
    call->thread = pthread_self();
    running_.push_back(call);
    // The watcher may have looked while this call was in neither queue_ nor running_
    // (between the pop in workerLoop and here) and gone to sleep without its deadline.
    wakeWatcherFor(*call);
  }
  const Clock::time_point start = Clock::now();
  CallResult result = [&] {
    try {
      return CallResult::success(call->target->call(position, call->args.data(), call->args.size(), &call->kwargs));
    } catch (const Error& e) {
      return CallResult::failure(e);
    } catch (const std::exception& e) {
      return CallResult::failure(Error(absl::InternalError(e.what())));
    }
  }();
  const Clock::time_point end = Clock::now();
  {
    // From here the watcher cannot interrupt this thread any more (it interrupts only
    // calls in running_, under mu_), and an interrupt the call never saw was dropped by
    // the interpreter when the call returned (see the ABI's `interrupt`).
    absl::MutexLock lock(&mu_);
    call->running = false;
    running_.erase(std::find(running_.begin(), running_.end(), call));
    if (call->took_out_of_rotation) balancer.setOutOfRotation(position, false);
  }
  // Free the interpreter before `done` runs: its caller may call again at once.
  std::move(release).Invoke();
  // A call the watcher completed (deadline, cancel) counts as such, not as what it
  // returned afterwards.
  if (!call->complete(result)) {
    result = CallResult::failure(Error(absl::Status(
        call->cancellation && call->cancellation->cancelled() ? absl::StatusCode::kCancelled
                                                              : absl::StatusCode::kDeadlineExceeded,
        "completed by the watcher")));
  }
  manager_->metrics().recordCall(position, OutcomeOf(result), SecondsBetween(start, end),
                                 SecondsBetween(call->submitted, start));
  return true;
}

void Dispatcher::interruptLocked(Call& call) {
  const InterpreterCore& core = *Access::core(manager_->interpreter(call.position));
  int32_t found = 0;
  PyfleetStatus* status = core.abi()->interrupt(core.interp(), static_cast<uint64_t>(call.thread), &found);
  core.abi()->status_free(status);
  call.interrupted = true;
  call.interrupted_at = Clock::now();
}

Clock::time_point Dispatcher::watchOnce(Clock::time_point now, std::vector<Finished>& done) {
  Clock::time_point next = Clock::time_point::max();
  auto verdict = [&](const Call& call) -> std::optional<absl::Status> {
    if (call.cancellation != nullptr && call.cancellation->cancelled()) {
      return absl::CancelledError("the call was cancelled");
    }
    if (call.deadline <= now) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the call's deadline passed ",
          absl::FormatDuration(absl::FromChrono(now - call.submitted)), " after submit"));
    }
    return std::nullopt;
  };
  // Queued calls past their deadline or cancelled: dropped.
  for (auto it = queue_.begin(); it != queue_.end();) {
    Call& call = **it;
    if (std::optional<absl::Status> status = verdict(call)) {
      done.push_back(Finished{*it, CallResult::failure(Error(std::move(*status))), /*never_ran=*/true});
      it = queue_.erase(it);
      continue;
    }
    if (call.cancellation != nullptr) next = std::min(next, now + kCancellationPoll);
    next = std::min(next, call.deadline);
    ++it;
  }
  manager_->metrics().setQueueDepth(static_cast<int64_t>(queue_.size()));
  // Running calls: completed on time, then interrupted; stuck ones out of rotation.
  for (const std::shared_ptr<Call>& call : running_) {
    if (!call->interrupted) {
      if (std::optional<absl::Status> status = verdict(*call)) {
        done.push_back(Finished{call, CallResult::failure(Error(std::move(*status))), /*never_ran=*/false});
        interruptLocked(*call);
      } else {
        if (call->cancellation != nullptr) next = std::min(next, now + kCancellationPoll);
        next = std::min(next, call->deadline);
        continue;
      }
    }
    const Clock::time_point stuck_at = call->interrupted_at + manager_->options().stuck_after;
    if (!call->took_out_of_rotation && stuck_at <= now) {
      manager_->balancer().setOutOfRotation(call->position, true);
      call->took_out_of_rotation = true;
    } else if (!call->took_out_of_rotation) {
      next = std::min(next, stuck_at);
    }
  }
  return next;
}

void Dispatcher::watchLoop() {
  std::vector<Finished> done;
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const Clock::time_point next = watchOnce(Clock::now(), done);
    if (!done.empty()) {
      mu_.Unlock();
      for (Finished& f : done) {
        if (f.call->complete(f.result) && f.never_ran) {
          // A running call is counted by its worker.
          manager_->metrics().recordCall(-1, OutcomeOf(f.result), 0, SecondsBetween(f.call->submitted, Clock::now()));
        }
      }
      done.clear();
      mu_.Lock();
      continue;
    }
    // Note [The watcher sleeps through calls that end in time]: with nothing to watch it
    // still wakes every kWatcherIdleTimer, so that calls with later deadlines need no signal.
    watcher_wakes_ = std::min(next, Clock::now() + kWatcherIdleTimer);
    watch_cv_.WaitWithTimeout(&mu_, absl::FromChrono(watcher_wakes_ - Clock::now()));
    watcher_wakes_ = Clock::time_point::min();
  }
  // The last interpreter this thread interrupted keeps its thread state until finalize.
}

void Dispatcher::shutdown() {
  absl::MutexLock join_lock(&join_mu_);
  std::deque<std::shared_ptr<Call>> dropped;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && workers_.empty() && !watcher_.joinable()) return;
    stopping_ = true;
    stopping_flag_.store(true, std::memory_order_release);
    dropped.swap(queue_);
    manager_->metrics().setQueueDepth(0);
    work_cv_.SignalAll();
    watch_cv_.SignalAll();
  }
  manager_->balancer().wakeWaiters();
  for (const std::shared_ptr<Call>& call : dropped) {
    CallResult result = CallResult::failure(
        Error(absl::CancelledError("the InterpreterManager was destroyed before the call ran")));
    if (call->complete(result)) {
      manager_->metrics().recordCall(-1, Outcome::kCancelled, 0, SecondsBetween(call->submitted, Clock::now()));
    }
  }
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  if (watcher_.joinable()) watcher_.join();
}

}  // namespace pyfleet::internal
