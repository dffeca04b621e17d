// File: model_repository.h
//
// ModelRepository: the models pyfleet-serve serves (a fixed set, named on the command
// line) and the server's readiness. Front ends look models up here; the server is ready
// when every model loaded and it is not shutting down, and when not, ready() says why.
//
//   ModelRepository repository;
//   repository.add(std::make_unique<ServedModel>("mlp", "mlp.pt", std::nullopt, 1024));
//   repository.loadAll(manager);           // a model that fails stays, not ready
//   absl::StatusOr<const ServedModel*> m = repository.find("mlp", /*version=*/"");
//   repository.infer(std::move(request), done);
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pyfleet/interpreter_manager.h"
#include "runtime/tools/serve/served_model.h"

namespace pyfleet::serve {

class ModelRepository {
 public:
  // Adds a model (before loadAll; names are unique: the command line checks).
  void add(std::unique_ptr<ServedModel> model);

  // ModelRepository::loadAll()
  //
  // Loads every model, one after the other, printing one line per model to stdout
  // ("model 'mlp' ready: ..." or "model 'mlp' failed to load: ...").
  void loadAll(InterpreterManager& manager);

  // ModelRepository::find()
  //
  // The model named `name`; NOT_FOUND for an unknown name, or for a version (non-empty)
  // the model does not have.
  absl::StatusOr<const ServedModel*> find(const std::string& name, const std::string& version) const;

  // ModelRepository::infer()
  //
  // find(request.model, request.version) then ServedModel::infer; `done` gets NOT_FOUND
  // for an unknown model.
  void infer(InferRequest request, InferDone done) const;

  // ModelRepository::ready()
  //
  // OK when every model is ready and the server is not shutting down; otherwise
  // UNAVAILABLE saying which models are not ready and why.
  absl::Status ready() const;

  // Marks the server as shutting down: ready() fails from now on; requests still run.
  void beginShutdown() { shutting_down_.store(true, std::memory_order_release); }
  // Stops every model (ServedModel::stop): after the front ends drained.
  void stopAll();

  const std::vector<std::unique_ptr<ServedModel>>& models() const { return models_; }

 private:
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace pyfleet::serve
