// File: grpc_frontend.cpp — see grpc_frontend.h.
#include "runtime/tools/serve/grpc_frontend.h"

#include <ATen/ATen.h>
#include <grpcpp/grpcpp.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "pyfleet/error.h"
#include "runtime/tools/serve/tensor_codec.h"

namespace pyfleet::serve {
namespace {

using inference::InferTensorContents;
using inference::ModelInferRequest;
using inference::ModelInferResponse;

// absl::StatusCode and grpc::StatusCode number the canonical codes alike.
grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// A steady-clock deadline for a gRPC client's (system-clock) one; max() for none.
Clock::time_point SteadyDeadline(std::chrono::system_clock::time_point deadline) {
  if (deadline == std::chrono::system_clock::time_point::max()) return Clock::time_point::max();
  const auto left = deadline - std::chrono::system_clock::now();
  if (left > std::chrono::hours(24 * 365)) return Clock::time_point::max();
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(left);
}

template <typename T, typename Field>
absl::StatusOr<at::Tensor> FromField(DataType type, const std::vector<int64_t>& shape, const Field& field,
                                     const std::string& name, int64_t count) {
  if (static_cast<int64_t>(field.size()) != count) {
    return absl::InvalidArgumentError(absl::StrCat("input '", name, "': the shape holds ", count,
                                                   " elements, the contents have ", field.size()));
  }
  at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(ScalarTypeOf(type)));
  T* out = tensor.data_ptr<T>();
  for (int64_t i = 0; i < count; ++i) {
    const auto v = field.Get(static_cast<int>(i));
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", name, "': element ", i, " (", v, ") is not a ", DataTypeName(type)));
      }
    }
    out[i] = static_cast<T>(v);
  }
  return tensor;
}

absl::StatusOr<at::Tensor> FromContents(DataType type, const std::vector<int64_t>& shape,
                                        const InferTensorContents& c, const std::string& name) {
  absl::StatusOr<int64_t> count = ElementCount(shape, absl::StrCat("input '", name, "'"));
  if (!count.ok()) return count.status();
  switch (type) {
    case DataType::kBool: return FromField<bool>(type, shape, c.bool_contents(), name, *count);
    case DataType::kUint8: return FromField<uint8_t>(type, shape, c.uint_contents(), name, *count);
    case DataType::kInt8: return FromField<int8_t>(type, shape, c.int_contents(), name, *count);
    case DataType::kInt16: return FromField<int16_t>(type, shape, c.int_contents(), name, *count);
    case DataType::kInt32: return FromField<int32_t>(type, shape, c.int_contents(), name, *count);
    case DataType::kInt64: return FromField<int64_t>(type, shape, c.int64_contents(), name, *count);
    case DataType::kFp32: return FromField<float>(type, shape, c.fp32_contents(), name, *count);
    case DataType::kFp64: return FromField<double>(type, shape, c.fp64_contents(), name, *count);
    case DataType::kFp16: break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("input '", name, "': FP16 has no typed contents; send it as raw_input_contents"));
}

// The InferRequest a ModelInferRequest holds (inputs, requested outputs, id, timeout).
absl::Status Decode(const ModelInferRequest& in, InferRequest& out) {
  out.model = in.model_name();
  out.version = in.model_version();
  out.id = in.id();
  if (auto timeout = in.parameters().find("timeout"); timeout != in.parameters().end()) {
    if (timeout->second.parameter_choice_case() != inference::InferParameter::kInt64Param ||
        timeout->second.int64_param() < 0) {
      return absl::InvalidArgumentError("parameter 'timeout' must be a non-negative int64_param (microseconds)");
    }
    out.timeout = std::chrono::microseconds(timeout->second.int64_param());
  }
  const bool raw = in.raw_input_contents_size() > 0;
  if (raw && in.raw_input_contents_size() != in.inputs_size()) {
    return absl::InvalidArgumentError(absl::StrCat("raw_input_contents has ", in.raw_input_contents_size(),
                                                   " entries for ", in.inputs_size(), " inputs"));
  }
  for (int i = 0; i < in.inputs_size(); ++i) {
    const ModelInferRequest::InferInputTensor& input = in.inputs(i);
    std::optional<DataType> type = ParseDataType(input.datatype());
    if (!type) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", input.name(), "': unsupported datatype '", input.datatype(),
          "' (one of BOOL, UINT8, INT8, INT16, INT32, INT64, FP16, FP32, FP64)"));
    }
    std::vector<int64_t> shape(input.shape().begin(), input.shape().end());
    absl::StatusOr<at::Tensor> tensor;
    if (raw) {
      if (input.has_contents()) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", input.name(), "': contents and raw_input_contents are both given"));
      }
      tensor = TensorFromRaw(*type, shape, in.raw_input_contents(i), input.name());
    } else {
      tensor = FromContents(*type, shape, input.contents(), input.name());
    }
    if (!tensor.ok()) return tensor.status();
    out.inputs.push_back({input.name(), *std::move(tensor)});
  }
  for (const auto& output : in.outputs()) out.requested_outputs.push_back(output.name());
  return absl::OkStatus();
}

void Encode(const InferOutputs& outputs, ModelInferResponse& out) {
  for (const NamedTensor& t : outputs.tensors) {
    ModelInferResponse::InferOutputTensor* tensor = out.add_outputs();
    tensor->set_name(t.name);
    tensor->set_datatype(DataTypeName(DataTypeOf(t.tensor.scalar_type()).value_or(DataType::kFp32)));
    for (int64_t d : t.tensor.sizes()) tensor->add_shape(d);
    out.add_raw_output_contents(TensorToRaw(t.tensor));
  }
}

}  // namespace

class GrpcFrontend::Service final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit Service(ServerContext& context) : ctx_(context) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* call, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return finish(call, "ServerLive", Clock::now(), absl::OkStatus());
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* call, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    response->set_ready(ctx_.repository.ready().ok());
    return finish(call, "ServerReady", Clock::now(), absl::OkStatus());
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* call, const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    absl::StatusOr<const ServedModel*> model = ctx_.repository.find(request->name(), request->version());
    if (model.ok()) response->set_ready((*model)->state() == ServedModel::State::kReady);
    return finish(call, "ModelReady", Clock::now(), model.status(), request->name());
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* call, const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) override {
    response->set_name(kServerName);
    response->set_version(kServerVersion);
    return finish(call, "ServerMetadata", Clock::now(), absl::OkStatus());
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* call,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    absl::StatusOr<const ServedModel*> model = ctx_.repository.find(request->name(), request->version());
    absl::Status status = model.status();
    if (status.ok() && (*model)->state() != ServedModel::State::kReady) {
      status = absl::UnavailableError(absl::StrCat("model '", (*model)->name(), "' is not ready",
                                                   (*model)->state() == ServedModel::State::kFailed
                                                       ? absl::StrCat(": it failed to load: ", (*model)->failure())
                                                       : std::string()));
    }
    if (status.ok()) {
      const serve::ModelMetadata& m = (*model)->metadata();
      response->set_name(m.name);
      for (const std::string& v : m.versions) response->add_versions(v);
      response->set_platform(m.platform);
      auto fill = [](const TensorSpec& spec, inference::ModelMetadataResponse::TensorMetadata* out) {
        out->set_name(spec.name);
        out->set_datatype(DataTypeName(spec.datatype));
        for (int64_t d : spec.shape) out->add_shape(d);
      };
      for (const TensorSpec& spec : m.inputs) fill(spec, response->add_inputs());
      for (const TensorSpec& spec : m.outputs) fill(spec, response->add_outputs());
    }
    return finish(call, "ModelMetadata", Clock::now(), status, request->name());
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* call, const ModelInferRequest* request,
                                       ModelInferResponse* response) override {
    const Clock::time_point start = Clock::now();
    auto in_flight = std::make_shared<InFlight>(ctx_.in_flight);
    const std::string model_name = request->model_name();
    absl::StatusOr<const ServedModel*> model = ctx_.repository.find(request->model_name(), request->model_version());
    if (!model.ok()) return finish(call, "ModelInfer", start, model.status(), model_name, request->id());
    InferRequest decoded;
    if (absl::Status status = Decode(*request, decoded); !status.ok()) {
      return finish(call, "ModelInfer", start, status, model_name, request->id(), /*inference=*/true);
    }
    decoded.deadline = ctx_.deadlineFor(decoded.timeout, SteadyDeadline(call->deadline()));
    const ServedModel* served = *model;
    grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
    served->infer(std::move(decoded), [this, call, reactor, response, served, start, in_flight,
                                       id = request->id()](absl::StatusOr<InferOutputs> result) {
      if (result.ok()) {
        response->set_model_name(served->name());
        response->set_model_version(served->version());
        response->set_id(id);
        Encode(*result, *response);
      }
      log(call, "ModelInfer", start, result.status(), served->name(), id, /*inference=*/true);
      reactor->Finish(ToGrpc(result.status()));
    });
    return reactor;
  }

 private:
  // Records the call (metrics, access log) and finishes it with `status`.
  grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* call, const char* method, Clock::time_point start,
                                   const absl::Status& status, const std::string& model = "",
                                   const std::string& id = "", bool inference = false) {
    log(call, method, start, status, model, id, inference);
    grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
    reactor->Finish(ToGrpc(status));
    return reactor;
  }

  void log(grpc::CallbackServerContext* call, const char* method, Clock::time_point start, const absl::Status& status,
           const std::string& model, const std::string& id, bool inference) {
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    ctx_.metrics->recordGrpcResponse(static_cast<int>(status.code()));
    if (inference) ctx_.metrics->recordInference(model, Protocol::kGrpc, status.code(), seconds);
    if (ctx_.access_log == nullptr) return;
    AccessLog::Entry e;
    e.protocol = "grpc";
    e.method = method;
    e.model = model;
    e.status = static_cast<int>(status.code());
    e.code = absl::StatusCodeToString(status.code());
    e.seconds = seconds;
    e.remote = call->peer();
    e.id = id;
    e.error = std::string(status.message());
    ctx_.access_log->write(e);
  }

  ServerContext& ctx_;
};

GrpcFrontend::GrpcFrontend(ServerContext& context, size_t max_message_bytes)
    : context_(context), max_message_bytes_(max_message_bytes), service_(std::make_unique<Service>(context)) {}

GrpcFrontend::~GrpcFrontend() { shutdown(Clock::now()); }

int GrpcFrontend::start(const std::string& host, int port) {
  const std::string address =
      host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
  grpc::ServerBuilder builder;
  int selected = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<size_t>(max_message_bytes_, INT32_MAX)));
  builder.SetMaxSendMessageSize(-1);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || selected == 0) {
    server_.reset();
    throw Error(absl::UnavailableError(
        absl::StrCat("gRPC: cannot listen on ", address, " (in use, or not an address of this machine)")));
  }
  return selected;
}

void GrpcFrontend::shutdown(std::chrono::steady_clock::time_point deadline) {
  if (server_ == nullptr) return;
  const auto left = deadline - Clock::now();
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(std::max(left, Clock::duration::zero())));
  server_->Wait();
  server_.reset();
}

}  // namespace pyfleet::serve
