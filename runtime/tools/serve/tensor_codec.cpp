// File: tensor_codec.cpp — see tensor_codec.h.
#include "runtime/tools/serve/tensor_codec.h"

#include <ATen/ATen.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pyfleet::serve {

// The raw form is little-endian; so is every machine pyfleet runs on (x86-64, arm64).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "raw tensor contents are little-endian");

namespace {

struct TypeInfo {
  DataType type;
  const char* name;
  at::ScalarType scalar;
  size_t size;
};

constexpr TypeInfo kTypes[] = {
    {DataType::kBool, "BOOL", at::kBool, 1},     {DataType::kUint8, "UINT8", at::kByte, 1},
    {DataType::kInt8, "INT8", at::kChar, 1},     {DataType::kInt16, "INT16", at::kShort, 2},
    {DataType::kInt32, "INT32", at::kInt, 4},    {DataType::kInt64, "INT64", at::kLong, 8},
    {DataType::kFp16, "FP16", at::kHalf, 2},     {DataType::kFp32, "FP32", at::kFloat, 4},
    {DataType::kFp64, "FP64", at::kDouble, 8},
};

const TypeInfo& Info(DataType type) {
  for (const TypeInfo& info : kTypes) {
    if (info.type == type) return info;
  }
  return kTypes[0];  // unreachable: every enumerator is in kTypes
}

// No request holds more elements than this (2^40): keeps every product below overflow.
constexpr int64_t kMaxElements = int64_t{1} << 40;

}  // namespace

const char* DataTypeName(DataType type) { return Info(type).name; }

std::optional<DataType> ParseDataType(absl::string_view name) {
  for (const TypeInfo& info : kTypes) {
    if (name == info.name) return info.type;
  }
  return std::nullopt;
}

at::ScalarType ScalarTypeOf(DataType type) { return Info(type).scalar; }

std::optional<DataType> DataTypeOf(at::ScalarType type) {
  for (const TypeInfo& info : kTypes) {
    if (info.scalar == type) return info.type;
  }
  return std::nullopt;
}

size_t ElementSize(DataType type) { return Info(type).size; }

absl::StatusOr<int64_t> ElementCount(const std::vector<int64_t>& shape, absl::string_view what) {
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": shape ", ShapeString(shape), " has a negative dimension"));
    }
    if (d != 0 && count > kMaxElements / d) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": shape ", ShapeString(shape), " is too large"));
    }
    count *= d;
  }
  return count;
}

std::string ShapeString(const std::vector<int64_t>& shape) { return absl::StrCat("[", absl::StrJoin(shape, ", "), "]"); }

absl::StatusOr<at::Tensor> TensorFromRaw(DataType type, const std::vector<int64_t>& shape, absl::string_view bytes,
                                         absl::string_view name) {
  absl::StatusOr<int64_t> count = ElementCount(shape, absl::StrCat("input '", name, "'"));
  if (!count.ok()) return count.status();
  const size_t expected = static_cast<size_t>(*count) * ElementSize(type);
  if (bytes.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("input '", name, "': ", DataTypeName(type), " shape ",
                                                   ShapeString(shape), " needs ", expected, " bytes of raw contents, got ",
                                                   bytes.size()));
  }
  at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(ScalarTypeOf(type)));
  if (expected > 0) std::memcpy(tensor.data_ptr(), bytes.data(), expected);
  return tensor;
}

std::string TensorToRaw(const at::Tensor& tensor) {
  const at::Tensor t = tensor.contiguous();
  return std::string(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
}

}  // namespace pyfleet::serve
