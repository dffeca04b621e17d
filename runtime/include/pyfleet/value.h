// File: value.h
//
// pyfleet::Value: a plain value that crosses into or out of an interpreter: None, bool,
// int, float, str, bytes, a tensor, or an Obj of that interpreter. Tensors cross without
// copies (see Note [Tensor handoff] in interpreter/src/tensor_bridge.h).
//
//   pyfleet::Value n = 3;                       // Python int
//   pyfleet::Value s = "text";                  // Python str
//   pyfleet::Value b = pyfleet::Bytes{"\x01"};  // Python bytes
//   pyfleet::Value t = at::ones({2});           // torch.Tensor, same storage
//   int64_t i = n.toInt();                      // pyfleet::Error if n is not an int
//
// Every C++ integer type converts to a Python int (an unsigned one above INT64_MAX is
// OUT_OF_RANGE), every floating-point type to a float; nullptr and pointers other than
// C strings do not compile. Nested values (lists, dicts) cross as at::IValue through
// Obj::toIValue() and the IValue calls of obj.h.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "pyfleet/export.h"

namespace pyfleet {

class Obj;

// Raw bytes (Python `bytes`), distinct from text.
struct Bytes {
  std::string data;
};

class PYFLEET_API Value {
 public:
  using Storage = std::variant<std::monostate, bool, int64_t, double, std::string, Bytes, at::Tensor,
                               std::shared_ptr<Obj>>;

  // None.
  Value() = default;
  Value(bool v) : v_(v) {}
  // Any integer type but bool (char included: Python has no character type): a Python int.
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Value(T v) : v_(checkedInt(v)) {}
  // Any floating-point type: a Python float.
  template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  Value(T v) : v_(static_cast<double>(v)) {}
  Value(const char* v);
  Value(char* v) : Value(static_cast<const char*>(v)) {}
  Value(std::string v) : v_(std::move(v)) {}
  Value(std::string_view v) : v_(std::string(v)) {}
  Value(Bytes v) : v_(std::move(v)) {}
  Value(at::Tensor v) : v_(std::move(v)) {}
  Value(Obj v);
  // A null pointer is neither None nor a string: say which you mean.
  Value(std::nullptr_t) = delete;
  // Other pointers would silently become bool.
  template <typename T>
  Value(T*) = delete;

  bool isNone() const { return std::holds_alternative<std::monostate>(v_); }
  bool isTensor() const { return std::holds_alternative<at::Tensor>(v_); }
  // Value::toBool(), toInt(), toDouble(), toString(), toBytes(), toTensor(), toObj()
  //
  // The held value; pyfleet::Error (INVALID_ARGUMENT) naming both types on a mismatch.
  bool toBool() const;
  int64_t toInt() const;
  double toDouble() const;
  const std::string& toString() const;
  const Bytes& toBytes() const;
  const at::Tensor& toTensor() const;
  const Obj& toObj() const;
  // "None", "bool", "int", "float", "str", "bytes", "Tensor" or "object".
  const char* typeName() const;

  const Storage& storage() const { return v_; }

 private:
  template <typename T>
  static int64_t checkedInt(T v) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(int64_t)) {
      if (v > static_cast<T>(std::numeric_limits<int64_t>::max())) throwOutOfRange(static_cast<uint64_t>(v));
    }
    return static_cast<int64_t>(v);
  }
  [[noreturn]] static void throwOutOfRange(uint64_t v);

  Storage v_;
};

}  // namespace pyfleet
