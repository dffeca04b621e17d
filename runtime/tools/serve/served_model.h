// File: served_model.h
//
// ServedModel: one model of pyfleet-serve, loaded from a torch.package through the host
// API and called on any interpreter of the server's one InterpreterManager.
//
//   ServedModel model("resnet18", "resnet18.pt", BatchConfig{8, std::chrono::microseconds(2000)});
//   model.load(manager);                       // never throws: a failure is a state
//   if (model.state() == ServedModel::State::kReady) model.infer(std::move(request), done);
//
// The package convention (what pyfleet's example packages and pyfleet-bench follow):
// `model/model.pkl` is the model (called with positional tensors), `model/example.pkl` a
// tuple of example positional arguments (a single tensor is one argument).
//
// Note [Model metadata from the example]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A package says nothing about its signature, so load() derives it from the example: one
// input per example argument, named after the model's forward() parameters (input__0,
// input__1, ... when those cannot be told), with the example's datatype and shape; the
// outputs come from calling the model on the example: a tensor is output__0, a tuple or
// list of tensors output__0.., a dict of tensors its keys. The shapes are the example's
// except that a batched model's first dimension is -1 (any size). Requests must match
// the datatypes and the fixed dimensions (a request a model cannot take fails with the
// protocol's error, not inside the model). The example runs once on every interpreter,
// which also warms each interpreter's copy of the model before the first request.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "pyfleet/interpreter_manager.h"
#include "pyfleet/replicated_obj.h"
#include "runtime/tools/serve/dynamic_batcher.h"
#include "runtime/tools/serve/inference_types.h"

namespace pyfleet::serve {

class ServedModel {
 public:
  enum class State { kLoading, kReady, kFailed, kStopped };

  // A model named `name` (as requests name it) from the package at `path`; batched when
  // `batch` is given (Note [When a batch leaves] in dynamic_batcher.h).
  ServedModel(std::string name, std::string path, std::optional<BatchConfig> batch, size_t max_queue);
  ~ServedModel();
  ServedModel(const ServedModel&) = delete;
  ServedModel& operator=(const ServedModel&) = delete;

  // ServedModel::load()
  //
  // Loads the model into every interpreter of `manager` (which must have
  // pyfleet_serve_support registered, see serve_support_source.h), derives its metadata
  // (Note [Model metadata from the example]) and makes it ready; on any failure the model
  // is kFailed and failure() says why. Call once.
  void load(InterpreterManager& manager);

  // ServedModel::infer()
  //
  // Validates `request` against the metadata and runs it; `done` gets the outputs (the
  // requested ones, in the request's order) or the error: UNAVAILABLE when the model is
  // not ready, INVALID_ARGUMENT for a request that does not fit the model,
  // RESOURCE_EXHAUSTED when the queue is full, DEADLINE_EXCEEDED when request.deadline
  // passes first, UNKNOWN with "<ExceptionType>: <message>" when the model raised.
  // Thread-safe; never throws.
  void infer(InferRequest request, InferDone done) const { infer(std::move(request), std::move(done), false); }
  // infer() for a caller that waits anyway (an HTTP handler thread): an unbatched model
  // runs on this thread when an interpreter is free (ReplicatedObj::call), which saves
  // the hand-off to a worker and back.
  absl::StatusOr<InferOutputs> inferHere(InferRequest request) const;

  // ServedModel::stop()
  //
  // Refuses new requests (UNAVAILABLE) and, for a batched model, fails those waiting for
  // a batch and waits for the running batches.
  void stop();

  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }
  const std::string& version() const { return version_; }
  State state() const { return state_.load(std::memory_order_acquire); }
  // Why the model failed to load ("" unless kFailed).
  std::string failure() const;
  // The metadata (valid once kReady).
  const ModelMetadata& metadata() const { return metadata_; }
  // The batcher of a batched model that loaded, else null.
  const DynamicBatcher* batcher() const { return batcher_.get(); }
  const std::optional<BatchConfig>& batchConfig() const { return batch_config_; }

 private:
  enum class OutputLayout { kTensor, kSequence, kDict };

  void fail(std::string why);
  // The outputs of one call, flattened in metadata order; INTERNAL if the model returned
  // something else than at load.
  absl::StatusOr<std::vector<at::Tensor>> flatten(const c10::IValue& result) const;
  // Validates `request`'s inputs, returning them in the model's input order.
  absl::StatusOr<std::vector<at::Tensor>> orderInputs(const InferRequest& request) const;
  // The indices (into metadata_.outputs) the request asks for.
  absl::StatusOr<std::vector<size_t>> selectOutputs(const InferRequest& request) const;
  void infer(InferRequest request, InferDone done, bool on_this_thread) const;
  // Runs one (possibly batched) call of `inputs`; `done` gets the flattened outputs. On
  // this thread if `on_this_thread` (and done() before it returns), else by submit().
  void run(std::vector<at::Tensor> inputs, Clock::time_point deadline, DynamicBatcher::Done done,
           bool on_this_thread = false) const;

  const std::string name_;
  const std::string path_;
  const std::string version_ = "1";
  const std::optional<BatchConfig> batch_config_;
  const size_t max_queue_;

  std::atomic<State> state_{State::kLoading};
  mutable absl::Mutex mu_;
  std::string failure_ ABSL_GUARDED_BY(mu_);

  // Set by load() before state_ becomes kReady, read-only after.
  ModelMetadata metadata_;
  OutputLayout layout_ = OutputLayout::kTensor;
  ReplicatedObj call_;  // pyfleet_serve_support.InferenceCall(name_)
  std::unique_ptr<DynamicBatcher> batcher_;
};

// StatusFromError()
//
// `e` (from a model call) as the status pyfleet-serve answers with: a Python exception
// becomes UNKNOWN "model 'NAME' raised <Type>: <message>" (whatever code the host API
// gave it: a KeyError is not a missing model), other errors keep their code.
absl::Status StatusFromError(const std::string& model, const std::exception& e);

}  // namespace pyfleet::serve
