// File: server_context.h
//
// ServerContext: what pyfleet-serve's front ends (HTTP/REST and gRPC) share: the models,
// the metrics, the access log, the default deadline and the count of requests in flight
// (graceful shutdown waits for it). Owned by main(), alive while any front end runs.
//
//   ServerContext context;
//   context.timeout = std::chrono::milliseconds(30000);
//   request.deadline = context.deadlineFor(request.timeout, client_deadline);
//   context.repository.infer(std::move(request), done);
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "pyfleet/interpreter_manager.h"
#include "runtime/tools/serve/access_log.h"
#include "runtime/tools/serve/inference_types.h"
#include "runtime/tools/serve/model_repository.h"
#include "runtime/tools/serve/serve_metrics.h"

namespace pyfleet::serve {

inline constexpr char kServerName[] = "pyfleet-serve";
inline constexpr char kServerVersion[] = "0.1";

struct ServerContext {
  ModelRepository repository;
  std::unique_ptr<ServeMetrics> metrics;     // set before the front ends start
  std::unique_ptr<AccessLog> access_log;     // null: no access log
  std::chrono::milliseconds timeout{0};      // --timeout-ms; zero: none
  std::atomic<InterpreterManager*> manager{nullptr};  // null while interpreters start
  std::atomic<int64_t> in_flight{0};         // inference requests being answered

  // ServerContext::deadlineFor()
  //
  // The earliest of: now + --timeout-ms, now + the request's own timeout, and the
  // client's deadline (gRPC); time_point::max() if there is none.
  Clock::time_point deadlineFor(std::chrono::microseconds request_timeout,
                                Clock::time_point client_deadline = Clock::time_point::max()) const {
    const Clock::time_point now = Clock::now();
    Clock::time_point deadline = client_deadline;
    if (timeout.count() > 0) deadline = std::min(deadline, now + timeout);
    if (request_timeout.count() > 0) deadline = std::min(deadline, now + request_timeout);
    return deadline;
  }

  // The /metrics text (ServeMetrics::render with the manager's snapshot).
  std::string metricsText() const {
    InterpreterManager* m = manager.load(std::memory_order_acquire);
    if (m == nullptr) return metrics->render(repository, nullptr, in_flight.load(std::memory_order_relaxed));
    const Metrics snapshot = m->metrics();
    return metrics->render(repository, &snapshot, in_flight.load(std::memory_order_relaxed));
  }
};

// Counts one inference request in flight for its scope.
class InFlight {
 public:
  explicit InFlight(std::atomic<int64_t>& count) : count_(count) { count_.fetch_add(1, std::memory_order_relaxed); }
  ~InFlight() { count_.fetch_sub(1, std::memory_order_release); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<int64_t>& count_;
};

}  // namespace pyfleet::serve
