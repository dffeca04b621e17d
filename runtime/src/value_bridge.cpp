// File: value_bridge.cpp — see value_bridge.h. Includes LibTorch's TensorImpl: tensors
// cross the ABI as c10::TensorImpl*.
#include "runtime/src/value_bridge.h"

#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "pyfleet/obj.h"
#include "runtime/src/access.h"
#include "runtime/src/interpreter_core.h"
#include "runtime/src/ivalue_bridge.h"

namespace pyfleet::internal {

using TensorImplPtr = c10::intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;

PyfleetValue ToAbiValue(const InterpreterCore& core, const Value& value) {
  PyfleetValue out{};
  const Value::Storage& v = value.storage();
  if (std::holds_alternative<std::monostate>(v)) {
    out.kind = PYFLEET_VALUE_NONE;
  } else if (auto* b = std::get_if<bool>(&v)) {
    out.kind = PYFLEET_VALUE_BOOL;
    out.u.i = *b;
  } else if (auto* i = std::get_if<int64_t>(&v)) {
    out.kind = PYFLEET_VALUE_INT;
    out.u.i = *i;
  } else if (auto* d = std::get_if<double>(&v)) {
    out.kind = PYFLEET_VALUE_DOUBLE;
    out.u.d = *d;
  } else if (auto* s = std::get_if<std::string>(&v)) {
    out.kind = PYFLEET_VALUE_STRING;
    out.u.str.data = s->data();
    out.u.str.size = s->size();
  } else if (auto* bytes = std::get_if<Bytes>(&v)) {
    out.kind = PYFLEET_VALUE_BYTES;
    out.u.str.data = bytes->data.data();
    out.u.str.size = bytes->data.size();
  } else if (auto* t = std::get_if<at::Tensor>(&v)) {
    out.kind = PYFLEET_VALUE_TENSOR;
    out.u.tensor = t->defined() ? t->unsafeGetTensorImpl() : nullptr;  // borrowed
  } else {
    const Obj& obj = *std::get<std::shared_ptr<Obj>>(v);
    core.checkOwner(obj);
    out.kind = PYFLEET_VALUE_OBJECT;
    out.u.obj = Access::handle(obj);
  }
  return out;
}

Value TakeAbiValue(PyfleetValue& v) {
  switch (v.kind) {
    case PYFLEET_VALUE_NONE:
      return Value();
    case PYFLEET_VALUE_BOOL:
      return Value(v.u.i != 0);
    case PYFLEET_VALUE_INT:
      return Value(static_cast<int64_t>(v.u.i));
    case PYFLEET_VALUE_DOUBLE:
      return Value(v.u.d);
    case PYFLEET_VALUE_STRING:
    case PYFLEET_VALUE_BYTES: {
      std::string data(v.u.str.data, v.u.str.size);
      bool is_bytes = v.kind == PYFLEET_VALUE_BYTES;
      std::free(const_cast<char*>(v.u.str.data));
      v = PyfleetValue{};
      return is_bytes ? Value(Bytes{std::move(data)}) : Value(std::move(data));
    }
    case PYFLEET_VALUE_TENSOR: {
      at::Tensor t(TensorImplPtr::reclaim(static_cast<c10::TensorImpl*>(v.u.tensor)));
      v = PyfleetValue{};
      return Value(std::move(t));
    }
    case PYFLEET_VALUE_LIST:
    case PYFLEET_VALUE_TUPLE:
    case PYFLEET_VALUE_DICT: {
      const char* type = v.kind == PYFLEET_VALUE_LIST ? "list" : v.kind == PYFLEET_VALUE_TUPLE ? "tuple" : "dict";
      FreeAbiValue(v);
      throw Error(absl::InvalidArgumentError(absl::StrCat(
          "cannot convert a Python object of type '", type,
          "' to a pyfleet::Value (tuples, lists and dicts cross as IValues: use Obj::toIValue())")));
    }
    default:
      FreeAbiValue(v);
      throw Error(absl::InternalError(absl::StrCat("unexpected ABI value kind ", v.kind)));
  }
}

}  // namespace pyfleet::internal
