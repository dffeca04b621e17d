// File: dynamic_batcher.cpp — see dynamic_batcher.h.
#include "runtime/tools/serve/dynamic_batcher.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace pyfleet::serve {

struct DynamicBatcher::Member {
  std::vector<at::Tensor> inputs;
  int64_t rows = 0;
  Clock::time_point enqueued;
  Clock::time_point deadline;
  Done done;
  std::atomic<bool> completed{false};

  // Runs `done` unless the member completed already (its deadline, or its batch).
  void complete(absl::StatusOr<std::vector<at::Tensor>> result) {
    if (completed.exchange(true, std::memory_order_acq_rel)) return;
    done(std::move(result));
  }
};

DynamicBatcher::DynamicBatcher(std::string model, BatchConfig config, size_t max_queue, size_t max_in_flight,
                               Runner run)
    : model_(std::move(model)),
      config_(config),
      max_queue_(max_queue),
      max_in_flight_(std::max<size_t>(max_in_flight, 1)),
      run_(std::move(run)),
      batch_sizes_(static_cast<size_t>(std::max<int64_t>(config.max_batch, 1)) + 1, 0) {
  thread_ = std::thread([this] { loop(); });
}

DynamicBatcher::~DynamicBatcher() { shutdown(); }

void DynamicBatcher::enqueue(std::vector<at::Tensor> inputs, int64_t rows, Clock::time_point deadline, Done done) {
  auto member = std::make_shared<Member>();
  member->inputs = std::move(inputs);
  member->rows = rows;
  member->enqueued = Clock::now();
  member->deadline = deadline;
  member->done = std::move(done);
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      refused = absl::UnavailableError(absl::StrCat("model '", model_, "': the server is shutting down"));
    } else if (queue_.size() >= max_queue_) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("model '", model_, "': ", queue_.size(), " requests wait for a batch already (--max-queue)"));
    } else {
      queued_rows_ += rows;
      queue_.push_back(member);
      cv_.Signal();
      return;
    }
  }
  member->complete(refused);
}

void DynamicBatcher::shutdown() {
  absl::MutexLock join_lock(&join_mu_);
  std::deque<MemberPtr> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(queue_);
    queued_rows_ = 0;
    cv_.SignalAll();
  }
  for (const MemberPtr& m : dropped) {
    m->complete(absl::UnavailableError(absl::StrCat("model '", model_, "': the server shut down before the request ran")));
  }
  if (thread_.joinable()) thread_.join();
  // Batches in flight call back into this object: wait for them (the runner completes
  // every call exactly once).
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](size_t* in_flight) { return *in_flight == 0; }, &in_flight_));
}

int64_t DynamicBatcher::queueDepth() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(queue_.size());
}

std::vector<uint64_t> DynamicBatcher::batchSizeCounts() const {
  absl::MutexLock lock(&mu_);
  return batch_sizes_;
}

Clock::time_point DynamicBatcher::expireLocked(Clock::time_point now, std::vector<MemberPtr>& expired) {
  Clock::time_point next = Clock::time_point::max();
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->deadline <= now) {
      queued_rows_ -= (*it)->rows;
      expired.push_back(*it);
      it = queue_.erase(it);
    } else {
      next = std::min(next, (*it)->deadline);
      ++it;
    }
  }
  for (auto it = running_.begin(); it != running_.end();) {
    if ((*it)->completed.load(std::memory_order_acquire)) {
      it = running_.erase(it);
    } else if ((*it)->deadline <= now) {
      expired.push_back(*it);
      it = running_.erase(it);
    } else {
      next = std::min(next, (*it)->deadline);
      ++it;
    }
  }
  return next;
}

void DynamicBatcher::loop() {
  std::vector<MemberPtr> expired;
  mu_.Lock();
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    Clock::time_point wake = expireLocked(now, expired);
    if (!expired.empty()) {
      mu_.Unlock();
      for (const MemberPtr& m : expired) {
        m->complete(absl::DeadlineExceededError(absl::StrCat(
            "model '", model_, "': the request's deadline passed ",
            absl::FormatDuration(absl::FromChrono(Clock::now() - m->enqueued)), " after it arrived")));
      }
      expired.clear();
      mu_.Lock();
      continue;
    }
    if (!queue_.empty() && in_flight_ < max_in_flight_) {
      // See Note [When a batch leaves].
      const Clock::time_point leave_at = queue_.front()->enqueued + config_.max_delay;
      if (queued_rows_ >= config_.max_batch || leave_at <= now) {
        std::vector<MemberPtr> batch;
        int64_t rows = 0;
        while (!queue_.empty() && (batch.empty() || rows + queue_.front()->rows <= config_.max_batch)) {
          rows += queue_.front()->rows;
          queued_rows_ -= queue_.front()->rows;
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        ++in_flight_;
        const size_t bucket = rows <= config_.max_batch ? static_cast<size_t>(rows) : 0;
        ++batch_sizes_[bucket];
        running_.insert(running_.end(), batch.begin(), batch.end());
        mu_.Unlock();
        dispatch(std::move(batch));
        mu_.Lock();
        continue;
      }
      wake = std::min(wake, leave_at);
    }
    if (wake == Clock::time_point::max()) {
      cv_.Wait(&mu_);
    } else {
      cv_.WaitWithTimeout(&mu_, absl::FromChrono(wake - now));
    }
  }
  mu_.Unlock();
}

void DynamicBatcher::dispatch(std::vector<MemberPtr> batch) {
  // The batch's deadline is its latest member's (Note [When a batch leaves]).
  Clock::time_point deadline = Clock::time_point::min();
  for (const MemberPtr& m : batch) deadline = std::max(deadline, m->deadline);
  std::vector<at::Tensor> inputs;
  try {
    if (batch.size() == 1) {
      inputs = batch[0]->inputs;
    } else {
      const size_t n = batch[0]->inputs.size();
      for (size_t i = 0; i < n; ++i) {
        std::vector<at::Tensor> parts;
        parts.reserve(batch.size());
        for (const MemberPtr& m : batch) parts.push_back(m->inputs[i]);
        inputs.push_back(at::cat(parts, 0));
      }
    }
  } catch (const std::exception& e) {
    finishBatch(batch, absl::InternalError(absl::StrCat("model '", model_, "': could not batch the inputs: ", e.what())));
    return;
  }
  auto shared = std::make_shared<std::vector<MemberPtr>>(std::move(batch));
  run_(std::move(inputs), deadline, [this, shared](absl::StatusOr<std::vector<at::Tensor>> outputs) {
    finishBatch(*shared, std::move(outputs));
  });
}

void DynamicBatcher::finishBatch(const std::vector<MemberPtr>& batch,
                                 absl::StatusOr<std::vector<at::Tensor>> outputs) {
  int64_t rows = 0;
  for (const MemberPtr& m : batch) rows += m->rows;
  if (outputs.ok()) {
    for (const at::Tensor& t : *outputs) {
      if (t.dim() == 0 || t.size(0) != rows) {
        outputs = absl::InternalError(absl::StrCat("model '", model_, "': a batch of ", rows,
                                                   " rows returned an output of shape ", c10::str(t.sizes()),
                                                   ": its first dimension is not the batch"));
        break;
      }
    }
  }
  int64_t offset = 0;
  for (const MemberPtr& m : batch) {
    if (!outputs.ok()) {
      m->complete(outputs.status());
      continue;
    }
    std::vector<at::Tensor> mine;
    mine.reserve(outputs->size());
    for (const at::Tensor& t : *outputs) mine.push_back(batch.size() == 1 ? t : t.narrow(0, offset, m->rows));
    offset += m->rows;
    m->complete(std::move(mine));
  }
  absl::MutexLock lock(&mu_);
  --in_flight_;
  cv_.Signal();
}

}  // namespace pyfleet::serve
