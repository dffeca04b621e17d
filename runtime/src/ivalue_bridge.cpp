// File: ivalue_bridge.cpp — see ivalue_bridge.h. Includes LibTorch's IValue and JIT
// types (the list and dict element types).
#include "runtime/src/ivalue_bridge.h"

#include <ATen/core/Dict.h>
#include <ATen/core/List.h>
#include <ATen/core/jit_type.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "pyfleet/obj.h"
#include "runtime/src/access.h"
#include "runtime/src/interpreter_core.h"

namespace pyfleet::internal {
namespace {

using TensorImplPtr = c10::intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;

// Deeper structures than this are refused rather than recursed into.
constexpr int kMaxDepth = 100;

[[noreturn]] void Refuse(const std::string& what, const std::string& where) {
  throw Error(absl::InvalidArgumentError(absl::StrCat("cannot pass ", what, " at ", where,
                                                      " to Python (supported: None, bool, int, float, str, "
                                                      "Tensor, and tuples, lists and dicts of them)")));
}

// The element type shared by every IValue of `values`, or Any.
c10::TypePtr SharedType(const std::vector<c10::IValue>& values) {
  if (values.empty()) return c10::AnyType::get();
  auto kind_of = [](const c10::IValue& v) -> c10::TypePtr {
    if (v.isTensor()) return c10::TensorType::get();
    if (v.isInt()) return c10::IntType::get();
    if (v.isDouble()) return c10::FloatType::get();
    if (v.isBool()) return c10::BoolType::get();
    if (v.isString()) return c10::StringType::get();
    return nullptr;
  };
  c10::TypePtr first = kind_of(values.front());
  if (first == nullptr) return c10::AnyType::get();
  for (const c10::IValue& v : values) {
    c10::TypePtr t = kind_of(v);
    if (t == nullptr || *t != *first) return c10::AnyType::get();
  }
  return first;
}

c10::IValue MakeList(std::vector<c10::IValue> items) {
  c10::TypePtr type = SharedType(items);
  if (type->kind() == c10::TypeKind::TensorType) {
    c10::List<at::Tensor> list;
    list.reserve(items.size());
    for (c10::IValue& v : items) list.push_back(std::move(v).toTensor());
    return c10::IValue(std::move(list));
  }
  if (type->kind() == c10::TypeKind::IntType) {
    c10::List<int64_t> list;
    list.reserve(items.size());
    for (const c10::IValue& v : items) list.push_back(v.toInt());
    return c10::IValue(std::move(list));
  }
  if (type->kind() == c10::TypeKind::FloatType) {
    c10::List<double> list;
    list.reserve(items.size());
    for (const c10::IValue& v : items) list.push_back(v.toDouble());
    return c10::IValue(std::move(list));
  }
  if (type->kind() == c10::TypeKind::BoolType) {
    c10::List<bool> list;
    list.reserve(items.size());
    for (const c10::IValue& v : items) list.push_back(v.toBool());
    return c10::IValue(std::move(list));
  }
  c10::impl::GenericList list(type);
  list.reserve(items.size());
  for (c10::IValue& v : items) list.push_back(std::move(v));
  return c10::IValue(std::move(list));
}

c10::IValue MakeDict(std::vector<c10::IValue> keys, std::vector<c10::IValue> values) {
  c10::impl::GenericDict dict(SharedType(keys), SharedType(values));
  dict.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) dict.insert_or_assign(std::move(keys[i]), std::move(values[i]));
  return c10::IValue(std::move(dict));
}

// Takes ownership of `v` (depth-first); `v` is NONE afterwards even if this throws.
c10::IValue Take(PyfleetValue& v) {
  PyfleetValue owned = std::exchange(v, PyfleetValue{});
  switch (owned.kind) {
    case PYFLEET_VALUE_NONE:
      return c10::IValue();
    case PYFLEET_VALUE_BOOL:
      return c10::IValue(owned.u.i != 0);
    case PYFLEET_VALUE_INT:
      return c10::IValue(static_cast<int64_t>(owned.u.i));
    case PYFLEET_VALUE_DOUBLE:
      return c10::IValue(owned.u.d);
    case PYFLEET_VALUE_STRING:
    case PYFLEET_VALUE_BYTES: {
      std::string text(owned.u.str.data, owned.u.str.size);
      std::free(const_cast<char*>(owned.u.str.data));
      return c10::IValue(std::move(text));
    }
    case PYFLEET_VALUE_TENSOR:
      if (owned.u.tensor == nullptr) return c10::IValue(at::Tensor());
      return c10::IValue(at::Tensor(TensorImplPtr::reclaim(static_cast<c10::TensorImpl*>(owned.u.tensor))));
    case PYFLEET_VALUE_LIST:
    case PYFLEET_VALUE_TUPLE:
    case PYFLEET_VALUE_DICT: {
      const size_t count = owned.kind == PYFLEET_VALUE_DICT ? 2 * owned.u.seq.size : owned.u.seq.size;
      PyfleetValue* items = owned.u.seq.items;
      std::vector<c10::IValue> values;
      values.reserve(count);
      try {
        for (size_t i = 0; i < count; ++i) values.push_back(Take(items[i]));
      } catch (...) {
        for (size_t i = 0; i < count; ++i) FreeAbiValue(items[i]);
        std::free(items);
        throw;
      }
      std::free(items);
      if (owned.kind == PYFLEET_VALUE_TUPLE) return c10::ivalue::Tuple::create(std::move(values));
      if (owned.kind == PYFLEET_VALUE_LIST) return MakeList(std::move(values));
      std::vector<c10::IValue> keys, dict_values;
      keys.reserve(owned.u.seq.size);
      dict_values.reserve(owned.u.seq.size);
      for (size_t i = 0; i < count; i += 2) {
        keys.push_back(std::move(values[i]));
        dict_values.push_back(std::move(values[i + 1]));
      }
      return MakeDict(std::move(keys), std::move(dict_values));
    }
    default:
      // OBJECT never comes back from a conversion; anything else is a newer library.
      throw Error(absl::InternalError(absl::StrCat("unexpected ABI value kind ", owned.kind, " in a result")));
  }
}

}  // namespace

PyfleetValue AbiValues::add(const c10::IValue& value, const std::string& where) {
  std::string path = where;
  return addAt(value, path, 0);
}

PyfleetValue AbiValues::add(const Obj& obj) {
  if (obj.empty()) {
    throw Error(absl::FailedPreconditionError("an empty pyfleet::Obj passed as an argument"));
  }
  core_.checkOwner(obj);
  PyfleetValue out{};
  out.kind = PYFLEET_VALUE_OBJECT;
  out.u.obj = Access::handle(obj);
  return out;
}

std::vector<PyfleetValue> AbiValues::addAll(const c10::IValue* args, size_t nargs) {
  std::vector<PyfleetValue> out;
  out.reserve(nargs);
  for (size_t i = 0; i < nargs; ++i) out.push_back(add(args[i], absl::StrCat("args[", i, "]")));
  return out;
}

std::vector<PyfleetKwarg> AbiValues::addKwargs(const std::unordered_map<std::string, c10::IValue>& kwargs) {
  std::vector<PyfleetKwarg> out;
  out.reserve(kwargs.size());
  for (const auto& [name, value] : kwargs) {
    out.push_back(PyfleetKwarg{name.c_str(), add(value, absl::StrCat("kwargs['", name, "']"))});
  }
  return out;
}

PyfleetValue AbiValues::addAt(const c10::IValue& value, std::string& where, int depth) {
  if (depth > kMaxDepth) Refuse(absl::StrCat("a structure nested deeper than ", kMaxDepth), where);
  PyfleetValue out{};
  if (value.isNone()) {
    out.kind = PYFLEET_VALUE_NONE;
  } else if (value.isBool()) {
    out.kind = PYFLEET_VALUE_BOOL;
    out.u.i = value.toBool();
  } else if (value.isInt()) {
    out.kind = PYFLEET_VALUE_INT;
    out.u.i = value.toInt();
  } else if (value.isDouble()) {
    out.kind = PYFLEET_VALUE_DOUBLE;
    out.u.d = value.toDouble();
  } else if (value.isString()) {
    const std::string& s = value.toStringRef();  // owned by `value`
    out.kind = PYFLEET_VALUE_STRING;
    out.u.str.data = s.data();
    out.u.str.size = s.size();
  } else if (value.isTensor()) {
    const at::Tensor& t = value.toTensor();
    out.kind = PYFLEET_VALUE_TENSOR;
    out.u.tensor = t.defined() ? t.unsafeGetTensorImpl() : nullptr;  // borrowed
  } else if (value.isTuple() || value.isList()) {
    const bool tuple = value.isTuple();
    c10::ArrayRef<c10::IValue> elements =
        tuple ? c10::ArrayRef<c10::IValue>(value.toTupleRef().elements()) : value.toListRef();
    std::vector<PyfleetValue>& items = arrays_.emplace_back();
    items.reserve(elements.size());
    const size_t base = where.size();
    for (size_t i = 0; i < elements.size(); ++i) {
      absl::StrAppend(&where, "[", i, "]");
      items.push_back(addAt(elements[i], where, depth + 1));
      where.resize(base);
    }
    out.kind = tuple ? PYFLEET_VALUE_TUPLE : PYFLEET_VALUE_LIST;
    out.u.seq.items = items.data();
    out.u.seq.size = items.size();
  } else if (value.isGenericDict()) {
    c10::impl::GenericDict dict = value.toGenericDict();
    std::vector<PyfleetValue>& items = arrays_.emplace_back();
    items.reserve(2 * dict.size());
    const size_t base = where.size();
    for (const auto& entry : dict) {
      // Keys and values are owned by `value`'s dict, which outlives this builder's use.
      absl::StrAppend(&where, "[key ", items.size() / 2, "]");
      items.push_back(addAt(entry.key(), where, depth + 1));
      where.resize(base);
      absl::StrAppend(&where, "[", entry.key().isString() ? absl::StrCat("'", entry.key().toStringRef(), "'")
                                                          : std::to_string(items.size() / 2),
                      "]");
      items.push_back(addAt(entry.value(), where, depth + 1));
      where.resize(base);
    }
    out.kind = PYFLEET_VALUE_DICT;
    out.u.seq.items = items.data();
    out.u.seq.size = items.size() / 2;
  } else {
    Refuse(absl::StrCat("an IValue of kind ", value.tagKind()), where);
  }
  return out;
}

PyfleetValue AbiValues::bytes(const std::string& data) {
  PyfleetValue out{};
  out.kind = PYFLEET_VALUE_BYTES;
  out.u.str.data = data.data();
  out.u.str.size = data.size();
  return out;
}

namespace {
template <typename T, typename Fill>
PyfleetValue ListOf(std::deque<std::vector<PyfleetValue>>& arrays, const std::vector<T>& values, Fill fill) {
  std::vector<PyfleetValue>& items = arrays.emplace_back(values.size());
  for (size_t i = 0; i < values.size(); ++i) fill(values[i], items[i]);
  PyfleetValue out{};
  out.kind = PYFLEET_VALUE_LIST;
  out.u.seq.items = items.data();
  out.u.seq.size = items.size();
  return out;
}
}  // namespace

PyfleetValue AbiValues::tensors(const std::vector<at::Tensor>& tensors) {
  return ListOf(arrays_, tensors, [](const at::Tensor& t, PyfleetValue& v) {
    v.kind = PYFLEET_VALUE_TENSOR;
    v.u.tensor = t.defined() ? t.unsafeGetTensorImpl() : nullptr;  // borrowed
  });
}

PyfleetValue AbiValues::strings(const std::vector<std::string>& strings) {
  return ListOf(arrays_, strings, [](const std::string& s, PyfleetValue& v) {
    v.kind = PYFLEET_VALUE_STRING;
    v.u.str.data = s.data();
    v.u.str.size = s.size();
  });
}

PyfleetValue AbiValues::objects(const std::vector<Obj>& objects) {
  for (const Obj& o : objects) add(o);  // checks each lives in this interpreter
  return ListOf(arrays_, objects, [](const Obj& o, PyfleetValue& v) {
    v.kind = PYFLEET_VALUE_OBJECT;
    v.u.obj = Access::handle(o);
  });
}

c10::IValue CallReturningIValue(const Obj& fn, const c10::IValue* args, size_t nargs,
                                const std::unordered_map<std::string, c10::IValue>* kwargs) {
  const InterpreterCore& core = *Access::core(fn);
  AbiValues values(core);
  std::vector<PyfleetValue> abi_args = values.addAll(args, nargs);
  std::vector<PyfleetKwarg> abi_kwargs;
  if (kwargs != nullptr) abi_kwargs = values.addKwargs(*kwargs);
  return CallReturningIValue(fn, abi_args, abi_kwargs);
}

c10::IValue CallReturningIValue(const Obj& fn, const std::vector<PyfleetValue>& args,
                                const std::vector<PyfleetKwarg>& kwargs) {
  if (fn.empty()) throw Error(absl::FailedPreconditionError("call of an empty pyfleet::Obj"));
  const InterpreterCore& core = *Access::core(fn);
  PyfleetValue out{};
  ThrowIfError(core.take(core.abi()->call_value(core.interp(), Access::handle(fn), args.data(), args.size(),
                                                kwargs.data(), kwargs.size(), &out)));
  return Take(out);
}

Obj CallReturningObj(const Obj& fn, const std::vector<PyfleetValue>& args, const std::vector<PyfleetKwarg>& kwargs) {
  if (fn.empty()) throw Error(absl::FailedPreconditionError("call of an empty pyfleet::Obj"));
  const std::shared_ptr<InterpreterCore>& core = Access::core(fn);
  PyfleetObj* out = nullptr;
  ThrowIfError(core->take(core->abi()->call(core->interp(), Access::handle(fn), args.data(), args.size(),
                                            kwargs.data(), kwargs.size(), &out)));
  return Access::makeObj(core, out);
}

c10::IValue TakeAbiValueAsIValue(PyfleetValue& v) { return Take(v); }

void FreeAbiValue(PyfleetValue& v) noexcept {
  PyfleetValue owned = std::exchange(v, PyfleetValue{});
  switch (owned.kind) {
    case PYFLEET_VALUE_STRING:
    case PYFLEET_VALUE_BYTES:
      std::free(const_cast<char*>(owned.u.str.data));
      break;
    case PYFLEET_VALUE_TENSOR:
      if (owned.u.tensor != nullptr) TensorImplPtr::reclaim(static_cast<c10::TensorImpl*>(owned.u.tensor));
      break;
    case PYFLEET_VALUE_LIST:
    case PYFLEET_VALUE_TUPLE:
    case PYFLEET_VALUE_DICT: {
      const size_t count = owned.kind == PYFLEET_VALUE_DICT ? 2 * owned.u.seq.size : owned.u.seq.size;
      for (size_t i = 0; i < count; ++i) FreeAbiValue(owned.u.seq.items[i]);
      std::free(owned.u.seq.items);
      break;
    }
    default:
      break;
  }
}

}  // namespace pyfleet::internal
