// File: load_balancer.cpp — see load_balancer.h.
#include "runtime/src/load_balancer.h"

#include <functional>
#include <limits>
#include <thread>

namespace pyfleet::internal {
namespace {

// The interpreter this thread used last, per balancer (one entry: a thread rarely
// alternates between managers, and a miss only costs the preference).
struct LastUsed {
  const void* balancer = nullptr;
  int position = -1;
};
thread_local LastUsed t_last_used;

}  // namespace

LoadBalancer::LoadBalancer(size_t n) : size_(n), limit_(n), counters_(new Counter[n]) {}

int LoadBalancer::acquire() noexcept {
  int position = tryAcquireFree();
  if (position >= 0) return position;
  const size_t limit = limit_.load(std::memory_order_relaxed);
  position = leastLoaded(limit, /*skip_out=*/true);
  if (position < 0) position = leastLoaded(limit, /*skip_out=*/false);
  counters_[position].uses.fetch_add(1, std::memory_order_acq_rel);
  t_last_used = {this, position};
  return position;
}

int LoadBalancer::tryAcquireFree() noexcept {
  const size_t limit = limit_.load(std::memory_order_relaxed);
  size_t start;
  if (t_last_used.balancer == this && static_cast<size_t>(t_last_used.position) < limit) {
    start = static_cast<size_t>(t_last_used.position);
  } else {
    // A thread new to this balancer starts somewhere of its own, so that many new threads
    // do not all try interpreter 0 first.
    start = std::hash<std::thread::id>()(std::this_thread::get_id()) % limit;
  }
  for (size_t k = 0; k < limit; ++k) {
    const size_t i = (start + k) % limit;
    Counter& c = counters_[i];
    if (c.out_of_rotation.load(std::memory_order_relaxed)) continue;
    int64_t expected = 0;
    if (c.uses.load(std::memory_order_seq_cst) == 0 &&
        c.uses.compare_exchange_strong(expected, 1, std::memory_order_seq_cst)) {
      t_last_used = {this, static_cast<int>(i)};
      return static_cast<int>(i);
    }
  }
  return -1;
}

int LoadBalancer::acquireFree(absl::Duration patience, const std::atomic<bool>& give_up) {
  absl::MutexLock lock(&free_mu_);
  uint64_t seen = frees_.load(std::memory_order_seq_cst);
  for (;;) {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    const int position = give_up.load(std::memory_order_acquire) ? -1 : tryAcquireFree();
    if (position >= 0 || give_up.load(std::memory_order_acquire)) {
      waiters_.fetch_sub(1, std::memory_order_seq_cst);
      return position;
    }
    const bool timed_out = free_cv_.WaitWithTimeout(&free_mu_, patience);
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    const uint64_t now_seen = frees_.load(std::memory_order_seq_cst);
    // Another waiter or caller took what was released meanwhile: wait on.
    if (timed_out && now_seen == seen) return -1;
    seen = now_seen;
  }
}

void LoadBalancer::acquireAt(int position) noexcept {
  counters_[position].uses.fetch_add(1, std::memory_order_seq_cst);
  t_last_used = {this, position};
}

void LoadBalancer::wakeWaiters() {
  absl::MutexLock lock(&free_mu_);
  free_cv_.SignalAll();
}

int LoadBalancer::leastLoaded(size_t limit, bool skip_out) noexcept {
  int best = -1;
  int64_t best_uses = std::numeric_limits<int64_t>::max();
  for (size_t i = 0; i < limit; ++i) {
    const Counter& c = counters_[i];
    if (skip_out && c.out_of_rotation.load(std::memory_order_relaxed)) continue;
    const int64_t uses = c.uses.load(std::memory_order_relaxed);
    if (uses < best_uses) {
      best_uses = uses;
      best = static_cast<int>(i);
    }
  }
  return best;
}

void LoadBalancer::release(int position) noexcept {
  if (counters_[position].uses.fetch_sub(1, std::memory_order_seq_cst) != 1) return;
  frees_.fetch_add(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) > 0) {
    absl::MutexLock lock(&free_mu_);
    free_cv_.Signal();
  }
}

void LoadBalancer::setLimit(size_t n) noexcept { limit_.store(n, std::memory_order_relaxed); }

void LoadBalancer::setOutOfRotation(int position, bool out) noexcept {
  counters_[position].out_of_rotation.store(out, std::memory_order_relaxed);
}

bool LoadBalancer::outOfRotation(int position) const noexcept {
  return counters_[position].out_of_rotation.load(std::memory_order_relaxed);
}

int64_t LoadBalancer::load(int position) const noexcept {
  return counters_[position].uses.load(std::memory_order_relaxed);
}

}  // namespace pyfleet::internal
