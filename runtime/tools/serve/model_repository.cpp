// File: model_repository.cpp — see model_repository.h.
#include "runtime/tools/serve/model_repository.h"

#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/tools/serve/tensor_codec.h"

namespace pyfleet::serve {
namespace {

std::string Describe(const std::vector<TensorSpec>& specs) {
  return absl::StrJoin(specs, ", ", [](std::string* out, const TensorSpec& s) {
    absl::StrAppend(out, s.name, " ", DataTypeName(s.datatype), ShapeString(s.shape));
  });
}

}  // namespace

void ModelRepository::add(std::unique_ptr<ServedModel> model) { models_.push_back(std::move(model)); }

void ModelRepository::loadAll(InterpreterManager& manager) {
  for (const std::unique_ptr<ServedModel>& model : models_) {
    const auto start = std::chrono::steady_clock::now();
    model->load(manager);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (model->state() == ServedModel::State::kReady) {
      const ModelMetadata& m = model->metadata();
      std::printf("pyfleet-serve: model '%s' ready in %.2f s: inputs %s; outputs %s%s\n", model->name().c_str(), seconds,
                  Describe(m.inputs).c_str(), Describe(m.outputs).c_str(),
                  model->batchConfig() ? absl::StrCat("; batched up to ", model->batchConfig()->max_batch, " rows, ",
                                                      model->batchConfig()->max_delay.count(), " us")
                                             .c_str()
                                       : "");
    } else {
      std::printf("pyfleet-serve: model '%s' failed to load: %s\n", model->name().c_str(), model->failure().c_str());
    }
    std::fflush(stdout);
  }
}

absl::StatusOr<const ServedModel*> ModelRepository::find(const std::string& name, const std::string& version) const {
  for (const std::unique_ptr<ServedModel>& model : models_) {
    if (model->name() != name) continue;
    if (!version.empty() && version != model->version()) {
      return absl::NotFoundError(
          absl::StrCat("model '", name, "' has no version '", version, "' (versions: ", model->version(), ")"));
    }
    return model.get();
  }
  return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
}

void ModelRepository::infer(InferRequest request, InferDone done) const {
  absl::StatusOr<const ServedModel*> model = find(request.model, request.version);
  if (!model.ok()) {
    done(model.status());
    return;
  }
  (*model)->infer(std::move(request), std::move(done));
}

absl::Status ModelRepository::ready() const {
  if (shutting_down_.load(std::memory_order_acquire)) return absl::UnavailableError("the server is shutting down");
  std::vector<std::string> problems;
  for (const std::unique_ptr<ServedModel>& model : models_) {
    switch (model->state()) {
      case ServedModel::State::kReady:
        break;
      case ServedModel::State::kLoading:
        problems.push_back(absl::StrCat("model '", model->name(), "' is loading"));
        break;
      case ServedModel::State::kFailed:
        problems.push_back(absl::StrCat("model '", model->name(), "' failed to load: ", model->failure()));
        break;
      case ServedModel::State::kStopped:
        problems.push_back(absl::StrCat("model '", model->name(), "' is stopped"));
        break;
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrJoin(problems, "; "));
}

void ModelRepository::stopAll() {
  beginShutdown();
  for (const std::unique_ptr<ServedModel>& model : models_) model->stop();
}

}  // namespace pyfleet::serve
