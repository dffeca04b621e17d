// File: call_options.h
//
// pyfleet::CallOptions: how an asynchronous call (ReplicatedObj::submit) is run: its
// deadline and a way to cancel it. pyfleet::Cancellation is the cancel switch one or
// many calls share.
//
//   auto cancel = std::make_shared<pyfleet::Cancellation>();
//   pyfleet::CallOptions options;
//   options.timeout = std::chrono::milliseconds(50);
//   options.cancellation = cancel;
//   std::future<at::IValue> f = model.submit({input}, options);
//   cancel->cancel();   // a call still queued fails with CANCELLED
//
// Note [Deadlines and interruption]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A call past its deadline fails with DEADLINE_EXCEEDED on time, whether it was still
// queued or already running: the future (or callback) completes when the deadline
// passes, not when the call returns. A queued call is dropped. A running call is
// interrupted inside its interpreter: pyfleet raises TimeoutError there asynchronously
// (PyThreadState_SetAsyncExc), which pure Python code sees at its next bytecode, so the
// interpreter returns to service. Code stuck in native code (a long torch op, a
// blocking read) cannot be interrupted: its interpreter is taken out of rotation (the
// load balancer skips it) until the call returns, and metrics count it as stuck.
// Cancellation works the same way, with CANCELLED.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include "pyfleet/export.h"

namespace pyfleet {

// A cancel switch. Thread-safe; cancel() is idempotent.
class PYFLEET_API Cancellation {
 public:
  void cancel() noexcept { cancelled_.store(true, std::memory_order_release); }
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> cancelled_{false};
};

struct CallOptions {
  // The call's deadline, counted from submit(); zero means none.
  std::chrono::nanoseconds timeout{0};
  // Cancels the call while it is queued or running (see the Note); may be shared.
  std::shared_ptr<Cancellation> cancellation;
};

}  // namespace pyfleet
