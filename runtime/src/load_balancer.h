// File: load_balancer.h
//
// LoadBalancer: which interpreter a new session or call gets; see Note [Load
// balancing] in pyfleet/interpreter_manager.h. Lock-free: one compare-and-swap when the
// preferred interpreter is free, a scan of n counters otherwise. Only acquireFree()
// waits, and release() takes a lock only when someone does.
//
//   int where = balancer.acquire();   // never blocks
//   ... use interpreter `where` ...
//   balancer.release(where);
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pyfleet::internal {

class LoadBalancer {
 public:
  explicit LoadBalancer(size_t n);

  // LoadBalancer::acquire()
  //
  // Takes a slot on an interpreter and returns its position: the one this thread used
  // last if it is free, else any free one, else the least loaded. Interpreters out of
  // rotation are used only if all are. Thread-safe, lock-free.
  int acquire() noexcept;
  // A free interpreter (no slot taken on it), taken as acquire() would; -1 if none.
  int tryAcquireFree() noexcept;
  // LoadBalancer::acquireFree()
  //
  // Waits for a free interpreter and takes it. Returns -1 if `patience` passes with no
  // interpreter released, or once `give_up` is true (checked whenever it wakes;
  // wakeWaiters() wakes it).
  int acquireFree(absl::Duration patience, const std::atomic<bool>& give_up);
  // Takes a slot on `position`, whatever its load.
  void acquireAt(int position) noexcept;
  // Wakes every acquireFree() so that it looks at its `give_up`.
  void wakeWaiters();
  // Gives back a slot acquire(), tryAcquireFree() or acquireFree() returned.
  void release(int position) noexcept;

  // Only positions [0, n) are handed out from now on (1 <= n <= size()).
  void setLimit(size_t n) noexcept;
  size_t size() const noexcept { return size_; }
  size_t limit() const noexcept { return limit_.load(std::memory_order_relaxed); }

  // Takes an interpreter out of rotation (a stuck call) or puts it back.
  void setOutOfRotation(int position, bool out) noexcept;
  bool outOfRotation(int position) const noexcept;
  // Slots taken on `position` now.
  int64_t load(int position) const noexcept;

 private:
  // One cache line each: threads on different interpreters never share a line.
  struct alignas(64) Counter {
    std::atomic<int64_t> uses{0};
    std::atomic<bool> out_of_rotation{false};
  };
  int leastLoaded(size_t limit, bool skip_out) noexcept;

  size_t size_;
  std::atomic<size_t> limit_;
  std::unique_ptr<Counter[]> counters_;

  // acquireFree(): how many wait, and how many times an interpreter became free. A
  // waiter counts itself before it looks, release() frees before it reads the count
  // (both sequentially consistent), so a release is never missed.
  std::atomic<int> waiters_{0};
  std::atomic<uint64_t> frees_{0};
  absl::Mutex free_mu_;
  absl::CondVar free_cv_;
};

}  // namespace pyfleet::internal
