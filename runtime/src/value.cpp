// File: value.cpp — pyfleet::Value (value.h).
#include "pyfleet/value.h"

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "pyfleet/obj.h"

namespace pyfleet {
namespace {

template <typename T>
const T& Get(const Value::Storage& v, const char* wanted, const Value& self) {
  if (const T* p = std::get_if<T>(&v)) return *p;
  throw Error(absl::InvalidArgumentError(absl::StrCat("expected a value of type ", wanted, ", got ", self.typeName())));
}

}  // namespace

Value::Value(const char* v) {
  if (v == nullptr) throw Error(absl::InvalidArgumentError("pyfleet::Value: a null C string"));
  v_ = std::string(v);
}

Value::Value(Obj v) : v_(std::make_shared<Obj>(std::move(v))) {}

void Value::throwOutOfRange(uint64_t v) {
  throw Error(absl::OutOfRangeError(absl::StrCat("pyfleet::Value: ", v, " does not fit a 64-bit signed int")));
}

const char* Value::typeName() const {
  static constexpr const char* kNames[] = {"None", "bool", "int", "float", "str", "bytes", "Tensor", "object"};
  return kNames[v_.index()];
}

bool Value::toBool() const { return Get<bool>(v_, "bool", *this); }
int64_t Value::toInt() const { return Get<int64_t>(v_, "int", *this); }
double Value::toDouble() const { return Get<double>(v_, "float", *this); }
const std::string& Value::toString() const { return Get<std::string>(v_, "str", *this); }
const Bytes& Value::toBytes() const { return Get<Bytes>(v_, "bytes", *this); }
const at::Tensor& Value::toTensor() const { return Get<at::Tensor>(v_, "Tensor", *this); }
const Obj& Value::toObj() const { return *Get<std::shared_ptr<Obj>>(v_, "object", *this); }

}  // namespace pyfleet
