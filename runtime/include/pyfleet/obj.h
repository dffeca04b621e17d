// File: obj.h
//
// pyfleet::Obj: a strong reference to a Python object living in one interpreter. The
// host never sees a PyObject*: it holds an Obj and calls through it (torch::deploy's
// Obj, with the same calls).
//
//   pyfleet::Obj json = interp->import("json");
//   std::string s = json.attr("dumps")({at::IValue(3)}).toIValue().toStringRef();  // "3"
//   at::Tensor y = model({at::ones({2, 3})}).toIValue().toTensor();
//   pyfleet::Obj r = fn.callKwargs({x}, {{"dim", 1}});
//   bytes_fn.call({pyfleet::Bytes{"\x00\x01"}});   // Values, for what IValue lacks
//
// Arguments and results cross as at::IValue (tensors without copies; tuples, lists and
// dicts in one crossing, see Note [IValue bridge] in runtime/src/ivalue_bridge.h) or as
// pyfleet::Value. Python bytes become an IValue string.
//
// Copies share the reference; the object is released (under its interpreter's GIL) when
// the last copy goes. An Obj lives as long as it is referenced, even past its
// Interpreter: then it is inert, and using it is FAILED_PRECONDITION. A default-
// constructed or moved-from Obj is empty: every use but assignment, empty() and
// destruction throws pyfleet::Error (FAILED_PRECONDITION). Using an Obj with another
// interpreter throws INVALID_ARGUMENT naming both interpreters. Thread-safe like the
// interpreter it lives in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ATen/core/ivalue.h>
#include <c10/util/ArrayRef.h>

#include <unordered_map>

#include "pyfleet/export.h"
#include "pyfleet/value.h"

namespace pyfleet {

namespace internal {
class InterpreterCore;
struct Access;
}  // namespace internal

class PYFLEET_API Obj {
 public:
  // An empty Obj (see the file comment).
  Obj() noexcept = default;
  Obj(const Obj& other);
  Obj& operator=(const Obj& other);
  Obj(Obj&& other) noexcept;
  Obj& operator=(Obj&& other) noexcept;
  ~Obj();

  // Obj::empty()
  //
  // True for a default-constructed or moved-from Obj.
  bool empty() const noexcept { return obj_ == nullptr; }

  // Obj::attr()
  //
  // getattr(self, name).
  Obj attr(std::string_view name) const;

  // Obj::hasattr()
  //
  // hasattr(self, name).
  bool hasattr(std::string_view name) const;

  // Obj::operator()
  //
  // self(*args). Obj arguments must live in this object's interpreter (INVALID_ARGUMENT
  // naming both interpreters otherwise).
  Obj operator()() const;
  Obj operator()(at::ArrayRef<c10::IValue> args) const;
  Obj operator()(at::ArrayRef<Obj> args) const;

  // Obj::callKwargs()
  //
  // self(*args, **kwargs) and self(**kwargs).
  Obj callKwargs(std::vector<c10::IValue> args, std::unordered_map<std::string, c10::IValue> kwargs) const;
  Obj callKwargs(std::unordered_map<std::string, c10::IValue> kwargs) const;

  // Obj::call()
  //
  // self(*args, **kwargs) with pyfleet::Values (bytes, Objs, scalars, tensors).
  Obj call(const std::vector<Value>& args = {},
           const std::vector<std::pair<std::string, Value>>& kwargs = {}) const;

  // Obj::toIValue()
  //
  // The object as an IValue: None, bool, int, float, str (and bytes), torch.Tensor, and
  // tuples, lists and dicts of them, nested. Anything else is INVALID_ARGUMENT naming
  // the Python type and where it sits ("result[1]['aux']").
  c10::IValue toIValue() const;

  // Obj::item()
  //
  // self[key].
  Obj item(const Value& key) const;

  // Obj::toValue()
  //
  // None, bool, int, float, str, bytes or torch.Tensor as a Value; other types throw
  // INVALID_ARGUMENT naming the Python type.
  Value toValue() const;
  at::Tensor toTensor() const { return toValue().toTensor(); }
  int64_t toInt() const { return toValue().toInt(); }
  double toDouble() const { return toValue().toDouble(); }
  std::string toString() const { return toValue().toString(); }
  bool toBool() const { return toValue().toBool(); }

  // repr(self).
  std::string repr() const;

  // The index of the interpreter this object lives in; -1 for an empty Obj.
  int interpreterIndex() const noexcept;

 private:
  friend struct internal::Access;
  Obj(std::shared_ptr<internal::InterpreterCore> core, void* obj) noexcept
      : core_(std::move(core)), obj_(obj) {}
  // Throws FAILED_PRECONDITION if empty.
  void checkNotEmpty(const char* operation) const;
  Obj callIValues(const c10::IValue* args, size_t nargs,
                  const std::unordered_map<std::string, c10::IValue>* kwargs) const;

  std::shared_ptr<internal::InterpreterCore> core_;
  void* obj_ = nullptr;  // a PyfleetObj*, a strong reference; nullptr when empty
};

}  // namespace pyfleet
