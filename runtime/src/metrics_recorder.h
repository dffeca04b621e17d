// File: metrics_recorder.h
//
// MetricsRecorder: the always-on counters behind pyfleet::Metrics (metrics.h). One
// cache-line-aligned block of relaxed atomics per interpreter, so recording a call is a
// handful of uncontended atomic adds on the interpreter that ran it.
//
//   recorder.recordCall(position, Outcome::kOk, run_seconds, /*queue_wait=*/-1);
//   Metrics m = recorder.snapshot(balancer);
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "pyfleet/metrics.h"

namespace pyfleet::internal {

class LoadBalancer;

class MetricsRecorder {
 public:
  enum class Outcome { kOk, kError, kTimeout, kCancelled };

  explicit MetricsRecorder(size_t interpreters);

  // A call that ran on `position` for `run_seconds` (its queue wait, for asynchronous
  // calls, or < 0). `position` -1: a call that never ran (failed while queued).
  void recordCall(int position, Outcome outcome, double run_seconds, double queue_wait_seconds) noexcept;
  void recordRejected() noexcept { rejected_.fetch_add(1, std::memory_order_relaxed); }
  void setQueueDepth(int64_t depth) noexcept { queue_depth_.store(depth, std::memory_order_relaxed); }

  Metrics snapshot(const LoadBalancer& balancer) const;

 private:
  struct Histogram {
    std::atomic<uint64_t> counts[LatencyHistogram::kBuckets] = {};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};
    void record(double seconds) noexcept;
    LatencyHistogram read() const;
  };
  struct alignas(64) Block {
    std::atomic<uint64_t> calls{0}, errors{0}, timeouts{0}, cancelled{0}, busy_ns{0};
    Histogram queue_wait, run_time;
  };
  size_t size_;
  std::unique_ptr<Block[]> blocks_;
  Block unplaced_;  // calls that failed before reaching an interpreter
  std::atomic<uint64_t> rejected_{0};
  std::atomic<int64_t> queue_depth_{0};
};

}  // namespace pyfleet::internal
