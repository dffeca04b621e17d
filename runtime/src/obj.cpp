// File: obj.cpp — pyfleet::Obj (obj.h) over the interpreter library's C ABI.
#include "pyfleet/obj.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "runtime/src/access.h"
#include "runtime/src/interpreter_core.h"
#include "runtime/src/ivalue_bridge.h"
#include "runtime/src/value_bridge.h"

namespace pyfleet {

using internal::Access;

Obj::Obj(const Obj& other) : core_(other.core_), obj_(other.obj_) {
  if (obj_ != nullptr) core_->abi()->obj_retain(core_->interp(), static_cast<PyfleetObj*>(obj_));
}

Obj& Obj::operator=(const Obj& other) {
  if (this != &other) *this = Obj(other);
  return *this;
}

Obj::Obj(Obj&& other) noexcept : core_(std::move(other.core_)), obj_(std::exchange(other.obj_, nullptr)) {}

Obj& Obj::operator=(Obj&& other) noexcept {
  if (this != &other) {
    if (obj_ != nullptr) core_->abi()->obj_release(core_->interp(), static_cast<PyfleetObj*>(obj_));
    core_ = std::move(other.core_);
    obj_ = std::exchange(other.obj_, nullptr);
  }
  return *this;
}

Obj::~Obj() {
  if (obj_ != nullptr) core_->abi()->obj_release(core_->interp(), static_cast<PyfleetObj*>(obj_));
}

void Obj::checkNotEmpty(const char* operation) const {
  if (obj_ == nullptr) {
    throw Error(absl::FailedPreconditionError(
        absl::StrCat("pyfleet::Obj::", operation, " on an empty Obj (default-constructed or moved-from)")));
  }
}

int Obj::interpreterIndex() const noexcept { return core_ && obj_ != nullptr ? core_->index() : -1; }

Obj Obj::attr(std::string_view name) const {
  checkNotEmpty("attr");
  PyfleetObj* out = nullptr;
  std::string n(name);
  ThrowIfError(core_->take(core_->abi()->get_attr(core_->interp(), static_cast<PyfleetObj*>(obj_), n.c_str(), &out)));
  return Obj(core_, out);
}

bool Obj::hasattr(std::string_view name) const {
  checkNotEmpty("hasattr");
  int32_t found = 0;
  std::string n(name);
  ThrowIfError(core_->take(core_->abi()->has_attr(core_->interp(), static_cast<PyfleetObj*>(obj_), n.c_str(), &found)));
  return found != 0;
}

Obj Obj::callIValues(const c10::IValue* args, size_t nargs,
                     const std::unordered_map<std::string, c10::IValue>* kwargs) const {
  checkNotEmpty("operator()");
  internal::AbiValues values(*core_);
  std::vector<PyfleetValue> abi_args = values.addAll(args, nargs);
  std::vector<PyfleetKwarg> abi_kwargs;
  if (kwargs != nullptr) abi_kwargs = values.addKwargs(*kwargs);
  return internal::CallReturningObj(*this, abi_args, abi_kwargs);
}

Obj Obj::operator()() const { return callIValues(nullptr, 0, nullptr); }

Obj Obj::operator()(at::ArrayRef<c10::IValue> args) const { return callIValues(args.data(), args.size(), nullptr); }

Obj Obj::operator()(at::ArrayRef<Obj> args) const {
  checkNotEmpty("operator()");
  internal::AbiValues values(*core_);
  std::vector<PyfleetValue> abi_args;
  abi_args.reserve(args.size());
  for (const Obj& a : args) abi_args.push_back(values.add(a));
  return internal::CallReturningObj(*this, abi_args);
}

Obj Obj::callKwargs(std::vector<c10::IValue> args, std::unordered_map<std::string, c10::IValue> kwargs) const {
  return callIValues(args.data(), args.size(), &kwargs);
}

Obj Obj::callKwargs(std::unordered_map<std::string, c10::IValue> kwargs) const {
  return callIValues(nullptr, 0, &kwargs);
}

c10::IValue Obj::toIValue() const {
  checkNotEmpty("toIValue");
  PyfleetValue v{};
  ThrowIfError(core_->take(core_->abi()->to_value(core_->interp(), static_cast<PyfleetObj*>(obj_), &v)));
  return internal::TakeAbiValueAsIValue(v);
}

Obj Obj::call(const std::vector<Value>& args, const std::vector<std::pair<std::string, Value>>& kwargs) const {
  checkNotEmpty("call");
  std::vector<PyfleetValue> abi_args;
  abi_args.reserve(args.size());
  for (const Value& a : args) abi_args.push_back(internal::ToAbiValue(*core_, a));
  std::vector<PyfleetKwarg> abi_kwargs;
  abi_kwargs.reserve(kwargs.size());
  for (const auto& [name, value] : kwargs) {
    abi_kwargs.push_back(PyfleetKwarg{name.c_str(), internal::ToAbiValue(*core_, value)});
  }
  PyfleetObj* out = nullptr;
  ThrowIfError(core_->take(core_->abi()->call(core_->interp(), static_cast<PyfleetObj*>(obj_), abi_args.data(),
                                              abi_args.size(), abi_kwargs.data(), abi_kwargs.size(), &out)));
  return Obj(core_, out);
}

Obj Obj::item(const Value& key) const {
  checkNotEmpty("item");
  PyfleetValue k = internal::ToAbiValue(*core_, key);
  PyfleetObj* out = nullptr;
  ThrowIfError(core_->take(core_->abi()->get_item(core_->interp(), static_cast<PyfleetObj*>(obj_), &k, &out)));
  return Obj(core_, out);
}

Value Obj::toValue() const {
  checkNotEmpty("toValue");
  PyfleetValue v{};
  ThrowIfError(core_->take(core_->abi()->to_value(core_->interp(), static_cast<PyfleetObj*>(obj_), &v)));
  return internal::TakeAbiValue(v);
}

std::string Obj::repr() const {
  checkNotEmpty("repr");
  char* text = nullptr;
  ThrowIfError(core_->take(core_->abi()->repr(core_->interp(), static_cast<PyfleetObj*>(obj_), &text)));
  std::string out(text);
  std::free(text);
  return out;
}

}  // namespace pyfleet
