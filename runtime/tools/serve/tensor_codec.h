// File: tensor_codec.h
//
// The protocol's tensor datatypes ("FP32", "INT64", ...) against torch's scalar types,
// and tensors to and from the protocol's raw form: the flattened, row-major,
// little-endian elements without padding (gRPC's raw_input_contents /
// raw_output_contents). The JSON form is in json_codec.h.
//
//   std::optional<DataType> t = ParseDataType("FP32");
//   absl::StatusOr<at::Tensor> x = TensorFromRaw(*t, {1, 8}, bytes, "x");
//   std::string raw = TensorToRaw(*x);   // the same bytes back
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tools/serve/inference_types.h"

namespace pyfleet::serve {

// DataTypeName()
//
// The protocol's name: "BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
// "FP64".
const char* DataTypeName(DataType type);

// ParseDataType()
//
// The datatype the protocol names `name` (case-sensitive, as the protocol says); nullopt
// for an unknown name or one pyfleet-serve does not carry (BYTES, UINT16, BF16, ...).
std::optional<DataType> ParseDataType(absl::string_view name);

// The torch scalar type of `type`, and back (nullopt for a scalar type the protocol
// cannot carry: complex, bfloat16, quantized).
at::ScalarType ScalarTypeOf(DataType type);
std::optional<DataType> DataTypeOf(at::ScalarType type);

// Bytes per element.
size_t ElementSize(DataType type);

// ElementCount()
//
// The number of elements of `shape`; INVALID_ARGUMENT naming `what` for a negative
// dimension or a count above 2^40 (no request is that big).
absl::StatusOr<int64_t> ElementCount(const std::vector<int64_t>& shape, absl::string_view what);

// ShapeString()
//
// "[1, 3, 224, 224]".
std::string ShapeString(const std::vector<int64_t>& shape);

// TensorFromRaw()
//
// A new tensor of `type` and `shape` holding `bytes` (copied). INVALID_ARGUMENT naming
// `name` if the size does not match the shape.
absl::StatusOr<at::Tensor> TensorFromRaw(DataType type, const std::vector<int64_t>& shape, absl::string_view bytes,
                                         absl::string_view name);

// TensorToRaw()
//
// `tensor`'s elements in raw form (contiguous copy).
std::string TensorToRaw(const at::Tensor& tensor);

}  // namespace pyfleet::serve
