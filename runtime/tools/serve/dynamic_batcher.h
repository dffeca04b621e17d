// File: dynamic_batcher.h
//
// DynamicBatcher: pyfleet-serve's dynamic batching for one model whose inputs and
// outputs all have the batch as their first dimension (--batch NAME=MAX_BATCH:DELAY_US).
// Requests arriving together are concatenated along dimension 0 into one call of up to
// MAX_BATCH rows, run once, and each gets its own rows of every output back: the same
// answer as an unbatched call (a model whose rows do not depend on each other; eval-mode
// BatchNorm, no cross-row reductions).
//
//   DynamicBatcher batcher("resnet18", {8, std::chrono::microseconds(2000)}, 1024,
//                          /*max_in_flight=*/2, [&](std::vector<at::Tensor> in,
//                              Clock::time_point deadline, DynamicBatcher::Done done) {
//                            model.submit(...);   // queues the call, returns at once
//                          });
//   batcher.enqueue({x}, /*rows=*/1, deadline, [](absl::StatusOr<std::vector<at::Tensor>> r) {...});
//
// Note [When a batch leaves]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// A batch leaves when it holds MAX_BATCH rows, or MAX_DELAY after its oldest request
// arrived, whichever comes first, but only while fewer than `max_in_flight` batches of
// this model are running (the interpreter count): while every interpreter is busy,
// requests keep gathering, so batches grow with the load instead of queueing behind each
// other as small ones. A request larger than MAX_BATCH rows runs alone. Each request
// keeps its own deadline: one that passes while it waits fails with DEADLINE_EXCEEDED on
// time and leaves the queue; one that passes while its batch runs fails on time too, and
// the batch's own deadline is its latest member's.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/tools/serve/inference_types.h"

namespace pyfleet::serve {

struct BatchConfig {
  int64_t max_batch = 0;               // rows per call, >= 1
  std::chrono::microseconds max_delay{0};  // how long the oldest request may wait for more
};

class DynamicBatcher {
 public:
  // A call's outputs (flattened, each with the batch as dimension 0) or its error.
  using Done = std::function<void(absl::StatusOr<std::vector<at::Tensor>>)>;
  // Starts one batched call and returns at once; `done` runs once when it finishes. It
  // may also run `done` before returning (an error such as a full queue).
  using Runner = std::function<void(std::vector<at::Tensor> inputs, Clock::time_point deadline, Done done)>;

  DynamicBatcher(std::string model, BatchConfig config, size_t max_queue, size_t max_in_flight, Runner run);
  // Shuts down (see shutdown()).
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // DynamicBatcher::enqueue()
  //
  // Queues one request of `rows` rows (`inputs`: one tensor per model input, each with
  // `rows` as dimension 0). `done` gets this request's rows of every output, or its
  // error: RESOURCE_EXHAUSTED at once when `max_queue` requests wait already,
  // DEADLINE_EXCEEDED when `deadline` passes first, UNAVAILABLE after shutdown().
  void enqueue(std::vector<at::Tensor> inputs, int64_t rows, Clock::time_point deadline, Done done);

  // DynamicBatcher::shutdown()
  //
  // Fails the requests still queued with UNAVAILABLE, stops the batching thread and
  // waits for the batches already running to finish. Idempotent.
  void shutdown();

  // Requests waiting for a batch now.
  int64_t queueDepth() const;
  // How many batches left with each number of rows: index r (1 <= r <= max_batch) counts
  // batches of r rows; index 0 those of more (a single request above max_batch).
  std::vector<uint64_t> batchSizeCounts() const;

 private:
  struct Member;
  using MemberPtr = std::shared_ptr<Member>;
  void loop();
  // Fails the queued and running members past their deadline (outside mu_: added to
  // `expired`); returns the earliest deadline still pending.
  Clock::time_point expireLocked(Clock::time_point now, std::vector<MemberPtr>& expired)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void dispatch(std::vector<MemberPtr> batch);
  void finishBatch(const std::vector<MemberPtr>& batch, absl::StatusOr<std::vector<at::Tensor>> outputs);

  const std::string model_;
  const BatchConfig config_;
  const size_t max_queue_;
  const size_t max_in_flight_;
  const Runner run_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<MemberPtr> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_rows_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<MemberPtr> running_ ABSL_GUARDED_BY(mu_);  // members of batches in flight
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;            // batches in flight
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<uint64_t> batch_sizes_ ABSL_GUARDED_BY(mu_);

  absl::Mutex join_mu_;  // serializes shutdown()
  std::thread thread_;
};

}  // namespace pyfleet::serve
