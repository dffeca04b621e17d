// File: json_codec.h
//
// The JSON bodies of the Open Inference Protocol's HTTP/REST API: an inference request
// ($inference_request) into an InferRequest, and outputs, metadata and errors into
// JSON text.
//
//   InferRequest request;
//   absl::Status s = ParseInferRequestJson(R"({"inputs": [{"name": "x", "shape": [1, 2],
//       "datatype": "FP32", "data": [1.5, 2]}]})", request);
//   std::string body = InferResponseJson("mlp", "1", request.id, outputs);
//
// Tensor data may be flat or nested (row-major either way); numbers are checked against
// the datatype (an INT8 must be an integer in [-128, 127], a BOOL true or false).
// Floating-point outputs are written with as many digits as round-trip the value, so a
// client reading them as doubles and casting back gets the very bits the model returned.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "runtime/tools/serve/inference_types.h"

namespace pyfleet::serve {

// ParseInferRequestJson()
//
// Fills `request`'s id, inputs, requested outputs and timeout from `body`.
// INVALID_ARGUMENT, with what is wrong and where, for malformed JSON, a missing or
// mistyped field, an unknown datatype, a shape that does not match the data, or a value
// the datatype cannot hold.
absl::Status ParseInferRequestJson(absl::string_view body, InferRequest& request);

// InferResponseJson()
//
// $inference_response: {"model_name", "model_version", "id" (if not empty), "outputs":
// [{"name", "datatype", "shape", "data"}]}.
std::string InferResponseJson(absl::string_view model, absl::string_view version, absl::string_view id,
                              const InferOutputs& outputs);

// ModelMetadataJson()
//
// $metadata_model_response: {"name", "versions", "platform", "inputs", "outputs"}.
std::string ModelMetadataJson(const ModelMetadata& metadata);

// ErrorJson()
//
// {"error": message}: the protocol's error object.
std::string ErrorJson(absl::string_view message);

// JsonString()
//
// `text` as a JSON string literal, quotes included.
std::string JsonString(absl::string_view text);

}  // namespace pyfleet::serve
