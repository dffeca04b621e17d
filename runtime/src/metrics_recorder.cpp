// File: metrics_recorder.cpp — see metrics_recorder.h; LatencyHistogram (metrics.h).
#include "runtime/src/metrics_recorder.h"

#include <cmath>
#include <limits>

#include "runtime/src/load_balancer.h"

namespace pyfleet {

double LatencyHistogram::bucketBound(int bucket) {
  if (bucket >= kBuckets - 1) return std::numeric_limits<double>::infinity();
  return std::ldexp(1e-6, bucket);  // 1 us * 2^bucket
}

double LatencyHistogram::quantile(double q) const {
  if (count == 0) return 0;
  const double target = q * static_cast<double>(count);
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += counts[b];
    if (static_cast<double>(seen) >= target) return bucketBound(b);
  }
  return bucketBound(kBuckets - 1);
}

namespace internal {
namespace {

int BucketOf(double seconds) {
  for (int b = 0; b < LatencyHistogram::kBuckets - 1; ++b) {
    if (seconds <= LatencyHistogram::bucketBound(b)) return b;
  }
  return LatencyHistogram::kBuckets - 1;
}

void Add(CallMetrics& into, const CallMetrics& from) {
  into.calls += from.calls;
  into.errors += from.errors;
  into.timeouts += from.timeouts;
  into.cancelled += from.cancelled;
  into.busy_seconds += from.busy_seconds;
  for (LatencyHistogram* h : {&into.queue_wait, &into.run_time}) {
    const LatencyHistogram& f = h == &into.queue_wait ? from.queue_wait : from.run_time;
    for (int b = 0; b < LatencyHistogram::kBuckets; ++b) h->counts[b] += f.counts[b];
    h->count += f.count;
    h->sum_seconds += f.sum_seconds;
  }
}

}  // namespace

MetricsRecorder::MetricsRecorder(size_t interpreters) : size_(interpreters), blocks_(new Block[interpreters]) {}

void MetricsRecorder::Histogram::record(double seconds) noexcept {
  counts[BucketOf(seconds)].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
  sum_ns.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

LatencyHistogram MetricsRecorder::Histogram::read() const {
  LatencyHistogram h;
  for (int b = 0; b < LatencyHistogram::kBuckets; ++b) h.counts[b] = counts[b].load(std::memory_order_relaxed);
  h.count = count.load(std::memory_order_relaxed);
  h.sum_seconds = static_cast<double>(sum_ns.load(std::memory_order_relaxed)) * 1e-9;
  return h;
}

void MetricsRecorder::recordCall(int position, Outcome outcome, double run_seconds,
                                 double queue_wait_seconds) noexcept {
  Block& b = position >= 0 && static_cast<size_t>(position) < size_ ? blocks_[position] : unplaced_;
  b.calls.fetch_add(1, std::memory_order_relaxed);
  if (outcome != Outcome::kOk) b.errors.fetch_add(1, std::memory_order_relaxed);
  if (outcome == Outcome::kTimeout) b.timeouts.fetch_add(1, std::memory_order_relaxed);
  if (outcome == Outcome::kCancelled) b.cancelled.fetch_add(1, std::memory_order_relaxed);
  if (queue_wait_seconds >= 0) b.queue_wait.record(queue_wait_seconds);
  if (position >= 0) {
    b.busy_ns.fetch_add(static_cast<uint64_t>(run_seconds * 1e9), std::memory_order_relaxed);
    b.run_time.record(run_seconds);
  }
}

Metrics MetricsRecorder::snapshot(const LoadBalancer& balancer) const {
  Metrics m;
  auto read = [](const Block& b, CallMetrics& out) {
    out.calls = b.calls.load(std::memory_order_relaxed);
    out.errors = b.errors.load(std::memory_order_relaxed);
    out.timeouts = b.timeouts.load(std::memory_order_relaxed);
    out.cancelled = b.cancelled.load(std::memory_order_relaxed);
    out.busy_seconds = static_cast<double>(b.busy_ns.load(std::memory_order_relaxed)) * 1e-9;
    out.queue_wait = b.queue_wait.read();
    out.run_time = b.run_time.read();
  };
  for (size_t i = 0; i < size_; ++i) {
    InterpreterMetrics im;
    read(blocks_[i], im);
    im.index = static_cast<int>(i);
    im.busy_now = balancer.load(static_cast<int>(i));
    im.stuck = balancer.outOfRotation(static_cast<int>(i));
    if (im.busy_now > 0) ++m.busy_interpreters;
    if (im.stuck) ++m.stuck_interpreters;
    Add(m.total, im);
    m.interpreters.push_back(std::move(im));
  }
  CallMetrics unplaced;
  read(unplaced_, unplaced);
  Add(m.total, unplaced);
  m.queue_depth = queue_depth_.load(std::memory_order_relaxed);
  m.rejected = rejected_.load(std::memory_order_relaxed);
  return m;
}

}  // namespace internal
}  // namespace pyfleet
