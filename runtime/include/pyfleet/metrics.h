// File: metrics.h
//
// pyfleet::Metrics: what a manager and each of its interpreters have done, read as a
// plain struct. Always on: recording a call costs a few relaxed atomic adds.
//
//   pyfleet::Metrics m = manager.metrics();
//   m.total.calls;                      // every call through ReplicatedObj / submit
//   m.total.run_time.quantile(0.99);    // seconds
//   m.interpreters[1].busy_now;         // calls running on interpreter 1 now
//   m.queue_depth;                      // submit() calls waiting for an interpreter
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "pyfleet/export.h"

namespace pyfleet {

// A latency histogram: counts per bucket, the sum and the count. Bucket b holds
// durations <= kBucketBounds[b] seconds; the last bucket everything above.
struct PYFLEET_API LatencyHistogram {
  static constexpr int kBuckets = 24;
  // 1 us, 2 us, 4 us, ... 2^22 us (4.2 s), +Inf: powers of two.
  static double bucketBound(int bucket);

  std::array<uint64_t, kBuckets> counts{};
  uint64_t count = 0;
  double sum_seconds = 0;

  double mean() const { return count == 0 ? 0 : sum_seconds / static_cast<double>(count); }
  // An upper bound of the q-quantile (0 < q <= 1): the bound of the bucket it falls in.
  double quantile(double q) const;
};

struct PYFLEET_API CallMetrics {
  uint64_t calls = 0;       // calls finished (successful or not)
  uint64_t errors = 0;      // of which failed (any error, deadlines included)
  uint64_t timeouts = 0;    // failed with DEADLINE_EXCEEDED
  uint64_t cancelled = 0;   // failed with CANCELLED
  double busy_seconds = 0;  // time spent running calls
  LatencyHistogram queue_wait;  // submit() -> start of the run (asynchronous calls)
  LatencyHistogram run_time;    // start -> end of the run in an interpreter
};

struct PYFLEET_API InterpreterMetrics : CallMetrics {
  int index = 0;           // position in InterpreterManager::allInstances()
  int64_t busy_now = 0;    // sessions and calls holding this interpreter now
  bool stuck = false;      // out of rotation: a call past its deadline has not returned
};

struct PYFLEET_API Metrics {
  CallMetrics total;  // the sum over interpreters
  std::vector<InterpreterMetrics> interpreters;
  int64_t queue_depth = 0;          // asynchronous calls queued now
  uint64_t rejected = 0;            // submit() refused: queue full (RESOURCE_EXHAUSTED)
  int64_t busy_interpreters = 0;    // interpreters with busy_now > 0
  int64_t stuck_interpreters = 0;   // interpreters out of rotation
};

}  // namespace pyfleet
