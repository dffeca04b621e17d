// File: load_balancer.h
//
// LoadBalancer: which interpreter a new session or call gets; see Note [Load
// balancing] in pyfleet/interpreter_manager.h. Lock-free: one compare-and-swap when the
// preferred interpreter is free, a scan of n counters otherwise.
//
//   int where = balancer.acquire();   // never blocks
//   ... use interpreter `where` ...
//   balancer.release(where);
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

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
  // Gives back a slot acquire() returned.
  void release(int position) noexcept;

  // Only positions [0, n) are handed out from now on (1 <= n <= size()).
  void setLimit(size_t n) noexcept;
  size_t size() const noexcept { return size_; }

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
};

}  // namespace pyfleet::internal
