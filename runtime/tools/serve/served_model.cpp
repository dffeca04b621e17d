// File: served_model.cpp — see served_model.h.
#include "runtime/tools/serve/served_model.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <future>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "pyfleet/error.h"
#include "pyfleet/interpreter.h"
#include "pyfleet/package.h"
#include "runtime/tools/serve/serve_support_source.h"
#include "runtime/tools/serve/tensor_codec.h"

namespace pyfleet::serve {
namespace {

// "builtins.ValueError" -> "ValueError"; other modules keep their name
// ("torch.package.importer.ImportError").
std::string ShortPythonType(const std::string& qualified) {
  absl::string_view type = qualified;
  absl::ConsumePrefix(&type, "builtins.");
  return std::string(type);
}

// The host API prefixes messages with the interpreter ("[interpreter 1] boom").
std::string WithoutInterpreterPrefix(absl::string_view message) {
  if (absl::StartsWith(message, "[")) {
    const size_t end = message.find("] ");
    if (end != absl::string_view::npos) message.remove_prefix(end + 2);
  }
  return std::string(message);
}

std::string Names(const std::vector<TensorSpec>& specs) {
  return absl::StrJoin(specs, ", ", [](std::string* out, const TensorSpec& s) { out->append(s.name); });
}

// The example's positional arguments: a tuple or list of tensors, or one tensor.
std::vector<at::Tensor> ExampleArgs(const c10::IValue& example) {
  std::vector<c10::IValue> items;
  if (example.isTuple()) {
    for (const c10::IValue& v : example.toTupleRef().elements()) items.push_back(v);
  } else if (example.isList()) {
    for (const c10::IValue& v : example.toListRef()) items.push_back(v);
  } else {
    items.push_back(example);
  }
  std::vector<at::Tensor> args;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].isTensor()) {
      throw Error(absl::InvalidArgumentError(absl::StrCat("model/example.pkl: argument ", i, " is a ",
                                                          items[i].tagKind(), ", not a tensor")));
    }
    args.push_back(items[i].toTensor());
  }
  if (args.empty()) throw Error(absl::InvalidArgumentError("model/example.pkl: no arguments"));
  return args;
}

TensorSpec SpecOf(std::string name, const at::Tensor& t, bool batched, const char* what) {
  std::optional<DataType> type = DataTypeOf(t.scalar_type());
  if (!type) {
    throw Error(absl::InvalidArgumentError(
        absl::StrCat(what, " '", name, "' is a ", c10::toString(t.scalar_type()),
                     " tensor, which the protocol cannot carry (BOOL, UINT8, INT8-64, FP16, FP32, FP64)")));
  }
  TensorSpec spec{std::move(name), *type, t.sizes().vec()};
  if (batched) {
    if (spec.shape.empty()) {
      throw Error(absl::InvalidArgumentError(
          absl::StrCat("--batch: ", what, " '", spec.name, "' is a 0-dimensional tensor: it has no batch dimension")));
    }
    spec.shape[0] = -1;
  }
  return spec;
}

}  // namespace

absl::Status StatusFromError(const std::string& model, const std::exception& e) {
  const auto* error = dynamic_cast<const Error*>(&e);
  if (error == nullptr) return absl::InternalError(absl::StrCat("model '", model, "': ", e.what()));
  const std::string type = error->pythonType();
  if (!type.empty()) {
    return absl::UnknownError(absl::StrCat("model '", model, "' raised ", ShortPythonType(type), ": ",
                                           WithoutInterpreterPrefix(error->status().message())));
  }
  return absl::Status(error->status().code(), absl::StrCat("model '", model, "': ", error->status().message()));
}

ServedModel::ServedModel(std::string name, std::string path, std::optional<BatchConfig> batch, size_t max_queue)
    : name_(std::move(name)), path_(std::move(path)), batch_config_(batch), max_queue_(max_queue) {}

ServedModel::~ServedModel() { stop(); }

std::string ServedModel::failure() const {
  absl::MutexLock lock(&mu_);
  return failure_;
}

void ServedModel::fail(std::string why) {
  {
    absl::MutexLock lock(&mu_);
    failure_ = std::move(why);
  }
  state_.store(State::kFailed, std::memory_order_release);
}

void ServedModel::load(InterpreterManager& manager) {
  try {
    Package package = manager.loadPackage(path_);
    ReplicatedObj model = package.loadPickle("model", "model.pkl");
    std::vector<at::Tensor> example;
    {
      InterpreterSession session = package.acquireSession();
      example = ExampleArgs(session.self.attr("load_pickle")({c10::IValue("model"), c10::IValue("example.pkl")})
                                .toIValue());
    }
    // Note [Calls run under no_grad] in serve_support.py: each interpreter's copy is
    // registered under the model's name, and the server calls an InferenceCall.
    std::vector<std::string> names;
    for (const Interpreter& interp : manager.allInstances()) {
      InterpreterSession session = model.acquireSession(&interp);
      session.global(kServeSupportModule, "register").call({Value(name_), Value(session.self)});
      if (names.empty()) {
        c10::IValue found = session.global(kServeSupportModule, "argument_names")
                                .call({Value(session.self), Value(example.size())})
                                .toIValue();
        for (const c10::IValue& n : found.toListRef()) names.push_back(n.toStringRef());
      }
    }
    if (names.size() != example.size()) {
      names.clear();
      for (size_t i = 0; i < example.size(); ++i) names.push_back(absl::StrCat("input__", i));
    }
    {
      InterpreterSession session = manager.acquireOne();
      Obj call = session.global(kServeSupportModule, "InferenceCall").call({Value(name_)});
      call_ = manager.createMovable(call, &session);
    }

    const bool batched = batch_config_.has_value();
    metadata_.name = name_;
    metadata_.versions = {version_};
    metadata_.platform = "pyfleet_torch_package";
    for (size_t i = 0; i < example.size(); ++i) metadata_.inputs.push_back(SpecOf(names[i], example[i], batched, "input"));
    if (batched) {
      const int64_t rows = example[0].size(0);
      for (size_t i = 1; i < example.size(); ++i) {
        if (example[i].size(0) != rows) {
          throw Error(absl::InvalidArgumentError(absl::StrCat(
              "--batch: the example's inputs disagree on the batch size (", rows, " vs ", example[i].size(0), ")")));
        }
      }
    }

    // The example on every interpreter (Note [Model metadata from the example]).
    const std::vector<c10::IValue> args(example.begin(), example.end());
    c10::IValue first;
    for (const Interpreter& interp : manager.allInstances()) {
      InterpreterSession session = call_.acquireSession(&interp);
      c10::IValue out = session.self(args).toIValue();
      if (first.isNone()) first = out;
    }
    std::vector<std::pair<std::string, at::Tensor>> outputs;
    auto tensorAt = [&](const c10::IValue& v, const std::string& where) {
      if (!v.isTensor()) {
        throw Error(absl::InvalidArgumentError(absl::StrCat("the model returned a ", v.tagKind(), " at ", where,
                                                            ": outputs must be tensors (or a tuple, list or dict of them)")));
      }
      return v.toTensor();
    };
    if (first.isTensor()) {
      layout_ = OutputLayout::kTensor;
      outputs.emplace_back("output__0", first.toTensor());
    } else if (first.isTuple() || first.isList()) {
      layout_ = OutputLayout::kSequence;
      std::vector<c10::IValue> items;
      if (first.isTuple()) {
        for (const c10::IValue& v : first.toTupleRef().elements()) items.push_back(v);
      } else {
        for (const c10::IValue& v : first.toListRef()) items.push_back(v);
      }
      for (size_t i = 0; i < items.size(); ++i) {
        outputs.emplace_back(absl::StrCat("output__", i), tensorAt(items[i], absl::StrCat("[", i, "]")));
      }
    } else if (first.isGenericDict()) {
      layout_ = OutputLayout::kDict;
      for (const auto& entry : first.toGenericDict()) {
        if (!entry.key().isString()) {
          throw Error(absl::InvalidArgumentError("the model returned a dict whose keys are not all strings"));
        }
        const std::string key = entry.key().toStringRef();
        outputs.emplace_back(key, tensorAt(entry.value(), absl::StrCat("['", key, "']")));
      }
    } else {
      tensorAt(first, "the top level");
    }
    if (outputs.empty()) throw Error(absl::InvalidArgumentError("the model returned no tensors"));
    for (auto& [output_name, tensor] : outputs) {
      if (batched && tensor.dim() > 0 && tensor.size(0) != example[0].size(0)) {
        throw Error(absl::InvalidArgumentError(absl::StrCat("--batch: output '", output_name, "' has shape ",
                                                            c10::str(tensor.sizes()), ": its first dimension is not the "
                                                            "batch of the example (", example[0].size(0), ")")));
      }
      metadata_.outputs.push_back(SpecOf(output_name, tensor, batched, "output"));
    }
    if (batched) {
      batcher_ = std::make_unique<DynamicBatcher>(
          name_, *batch_config_, max_queue_, manager.size(),
          [this](std::vector<at::Tensor> inputs, Clock::time_point deadline, DynamicBatcher::Done done) {
            run(std::move(inputs), deadline, std::move(done));
          });
    }
    state_.store(State::kReady, std::memory_order_release);
  } catch (const Error& e) {
    std::string why = e.pythonType().empty()
                          ? std::string(e.status().message())
                          : absl::StrCat(ShortPythonType(e.pythonType()), ": ", WithoutInterpreterPrefix(e.status().message()));
    fail(absl::StrCat(path_, ": ", why));
  } catch (const std::exception& e) {
    fail(absl::StrCat(path_, ": ", e.what()));
  }
}

void ServedModel::stop() {
  State ready = State::kReady;
  state_.compare_exchange_strong(ready, State::kStopped, std::memory_order_acq_rel);
  if (batcher_) batcher_->shutdown();
}

absl::StatusOr<std::vector<at::Tensor>> ServedModel::orderInputs(const InferRequest& request) const {
  const std::vector<TensorSpec>& specs = metadata_.inputs;
  std::vector<at::Tensor> ordered(specs.size());
  for (const NamedTensor& input : request.inputs) {
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const TensorSpec& s) { return s.name == input.name; });
    if (spec == specs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", name_, "' has no input '", input.name, "' (inputs: ", Names(specs), ")"));
    }
    const size_t index = static_cast<size_t>(spec - specs.begin());
    if (ordered[index].defined()) {
      return absl::InvalidArgumentError(absl::StrCat("input '", input.name, "' is given twice"));
    }
    const std::optional<DataType> type = DataTypeOf(input.tensor.scalar_type());
    if (!type || *type != spec->datatype) {
      return absl::InvalidArgumentError(absl::StrCat("input '", input.name, "': datatype ",
                                                     type ? DataTypeName(*type) : "?", " does not match the model's ",
                                                     DataTypeName(spec->datatype)));
    }
    const std::vector<int64_t> shape = input.tensor.sizes().vec();
    bool fits = shape.size() == spec->shape.size();
    for (size_t d = 0; fits && d < shape.size(); ++d) fits = spec->shape[d] < 0 || spec->shape[d] == shape[d];
    if (!fits) {
      return absl::InvalidArgumentError(absl::StrCat("input '", input.name, "': shape ", ShapeString(shape),
                                                     " does not match the model's ", ShapeString(spec->shape)));
    }
    ordered[index] = input.tensor;
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!ordered[i].defined()) {
      return absl::InvalidArgumentError(absl::StrCat("missing input '", specs[i].name, "' (model '", name_,
                                                     "' takes ", Names(specs), ")"));
    }
  }
  return ordered;
}

absl::StatusOr<std::vector<size_t>> ServedModel::selectOutputs(const InferRequest& request) const {
  const std::vector<TensorSpec>& specs = metadata_.outputs;
  std::vector<size_t> selected;
  if (request.requested_outputs.empty()) {
    for (size_t i = 0; i < specs.size(); ++i) selected.push_back(i);
    return selected;
  }
  for (const std::string& wanted : request.requested_outputs) {
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const TensorSpec& s) { return s.name == wanted; });
    if (spec == specs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", name_, "' has no output '", wanted, "' (outputs: ", Names(specs), ")"));
    }
    selected.push_back(static_cast<size_t>(spec - specs.begin()));
  }
  return selected;
}

absl::StatusOr<std::vector<at::Tensor>> ServedModel::flatten(const c10::IValue& result) const {
  std::vector<at::Tensor> tensors;
  auto mismatch = [&] {
    return absl::InternalError(absl::StrCat("model '", name_, "' returned a ", result.tagKind(),
                                            " unlike at load (outputs: ", Names(metadata_.outputs), ")"));
  };
  switch (layout_) {
    case OutputLayout::kTensor:
      if (!result.isTensor()) return mismatch();
      tensors.push_back(result.toTensor());
      break;
    case OutputLayout::kSequence: {
      std::vector<c10::IValue> items;
      if (result.isTuple()) {
        for (const c10::IValue& v : result.toTupleRef().elements()) items.push_back(v);
      } else if (result.isList()) {
        for (const c10::IValue& v : result.toListRef()) items.push_back(v);
      } else {
        return mismatch();
      }
      for (const c10::IValue& v : items) {
        if (!v.isTensor()) return mismatch();
        tensors.push_back(v.toTensor());
      }
      break;
    }
    case OutputLayout::kDict: {
      if (!result.isGenericDict()) return mismatch();
      const c10::impl::GenericDict dict = result.toGenericDict();
      for (const TensorSpec& spec : metadata_.outputs) {
        auto it = dict.find(c10::IValue(spec.name));
        if (it == dict.end() || !it->value().isTensor()) return mismatch();
        tensors.push_back(it->value().toTensor());
      }
      break;
    }
  }
  if (tensors.size() != metadata_.outputs.size()) return mismatch();
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (DataTypeOf(tensors[i].scalar_type()) != metadata_.outputs[i].datatype) {
      return absl::InternalError(absl::StrCat("model '", name_, "': output '", metadata_.outputs[i].name, "' is ",
                                              c10::toString(tensors[i].scalar_type()), ", at load it was ",
                                              DataTypeName(metadata_.outputs[i].datatype)));
    }
  }
  return tensors;
}

void ServedModel::run(std::vector<at::Tensor> inputs, Clock::time_point deadline, DynamicBatcher::Done done,
                      bool on_this_thread) const {
  CallOptions options;
  if (deadline != Clock::time_point::max()) {
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
      done(absl::DeadlineExceededError(absl::StrCat("model '", name_, "': the request's deadline passed before it ran")));
      return;
    }
    options.timeout = left;
  }
  std::vector<c10::IValue> args(inputs.begin(), inputs.end());
  if (on_this_thread) {
    absl::StatusOr<std::vector<at::Tensor>> outputs;
    try {
      outputs = flatten(call_.call(std::move(args), options));
    } catch (const std::exception& e) {
      outputs = StatusFromError(name_, e);
    }
    done(std::move(outputs));
    return;
  }
  try {
    call_.submit(
        std::move(args),
        [this, done](CallResult result) {
          if (!result.ok()) {
            done(StatusFromError(name_, *result.error()));
            return;
          }
          done(flatten(result.value()));
        },
        options);
  } catch (const std::exception& e) {
    // Refused at once: the queue is full (RESOURCE_EXHAUSTED) or the manager is gone.
    done(StatusFromError(name_, e));
  }
}

absl::StatusOr<InferOutputs> ServedModel::inferHere(InferRequest request) const {
  // Shared: a batched request's callback may run on another thread while this one wakes.
  auto promise = std::make_shared<std::promise<absl::StatusOr<InferOutputs>>>();
  std::future<absl::StatusOr<InferOutputs>> future = promise->get_future();
  infer(
      std::move(request), [promise](absl::StatusOr<InferOutputs> r) { promise->set_value(std::move(r)); },
      /*on_this_thread=*/true);
  return future.get();
}

void ServedModel::infer(InferRequest request, InferDone done, bool on_this_thread) const {
  const State state = state_.load(std::memory_order_acquire);
  if (state != State::kReady) {
    done(absl::UnavailableError(state == State::kFailed ? absl::StrCat("model '", name_, "' is not ready: it failed to load: ", failure())
                                : state == State::kStopped ? absl::StrCat("model '", name_, "' is not ready: the server is shutting down")
                                                           : absl::StrCat("model '", name_, "' is not ready: it is loading")));
    return;
  }
  absl::StatusOr<std::vector<at::Tensor>> inputs = orderInputs(request);
  if (!inputs.ok()) {
    done(inputs.status());
    return;
  }
  absl::StatusOr<std::vector<size_t>> selected = selectOutputs(request);
  if (!selected.ok()) {
    done(selected.status());
    return;
  }
  auto finish = [this, selected = *std::move(selected), done](absl::StatusOr<std::vector<at::Tensor>> outputs) {
    if (!outputs.ok()) {
      done(outputs.status());
      return;
    }
    InferOutputs result;
    result.tensors.reserve(selected.size());
    for (size_t i : selected) result.tensors.push_back({metadata_.outputs[i].name, (*outputs)[i]});
    done(std::move(result));
  };
  if (batcher_ != nullptr) {
    const int64_t rows = (*inputs)[0].size(0);
    for (const at::Tensor& t : *inputs) {
      if (t.size(0) != rows) {
        done(absl::InvalidArgumentError(absl::StrCat("model '", name_, "' batches its inputs: their first dimensions ",
                                                     "(the batch) must agree")));
        return;
      }
    }
    batcher_->enqueue(*std::move(inputs), rows, request.deadline, std::move(finish));
    return;
  }
  run(*std::move(inputs), request.deadline, std::move(finish), on_this_thread);
}

}  // namespace pyfleet::serve
