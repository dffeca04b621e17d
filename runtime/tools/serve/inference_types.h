// File: inference_types.h
//
// What pyfleet-serve's front ends (HTTP/REST, gRPC) and its models exchange: an
// inference request with named tensors, its outputs, and the tensor metadata of a model,
// all independent of the wire format. The front ends decode into these types and encode
// from them; ServedModel (served_model.h) validates and runs them.
//
//   InferRequest request;
//   request.model = "resnet18";
//   request.inputs.push_back({"x", at::rand({1, 3, 224, 224})});
//   request.deadline = Clock::now() + std::chrono::seconds(1);
//   repository.infer(std::move(request), [](absl::StatusOr<InferOutputs> r) { ... });
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pyfleet::serve {

using Clock = std::chrono::steady_clock;

// The protocol's tensor datatypes pyfleet-serve carries (torch 1.13 has no unsigned type
// wider than 8 bits, and BYTES has no tensor).
enum class DataType { kBool, kUint8, kInt8, kInt16, kInt32, kInt64, kFp16, kFp32, kFp64 };

// A tensor's name, datatype and shape as a model's metadata gives it; -1 in `shape` is a
// dimension of any size (the batch dimension of a batched model).
struct TensorSpec {
  std::string name;
  DataType datatype = DataType::kFp32;
  std::vector<int64_t> shape;
};

struct NamedTensor {
  std::string name;
  at::Tensor tensor;
};

struct InferRequest {
  std::string model;
  std::string version;  // empty: the model's only version
  std::string id;       // echoed in the response
  std::vector<NamedTensor> inputs;
  std::vector<std::string> requested_outputs;  // empty: every output
  // The request's own time limit (its "timeout" parameter, in microseconds as the
  // protocol's implementations have it); zero: none. The front end turns it, the
  // server's --timeout-ms and a gRPC client's deadline into `deadline`.
  std::chrono::microseconds timeout{0};
  Clock::time_point deadline = Clock::time_point::max();
};

// What GET /v2/models/NAME and ModelMetadata answer.
struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

// The outputs of one inference, in the order of the model's output specs (or of the
// request's requested_outputs).
struct InferOutputs {
  std::vector<NamedTensor> tensors;
};

// Receives an inference's outcome exactly once, on whichever thread completed it (a
// pyfleet worker, the batcher, or the caller's own thread for an early error). Keep it
// short: it must not block.
using InferDone = std::function<void(absl::StatusOr<InferOutputs>)>;

}  // namespace pyfleet::serve
