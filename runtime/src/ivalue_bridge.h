// File: ivalue_bridge.h
//
// at::IValue <-> the C ABI's PyfleetValue trees: how arguments and results of the
// IValue calls (Obj::operator(), ReplicatedObj, sessions) cross into an interpreter.
//
//   AbiValues args(core);                          // owns the nested arrays
//   PyfleetValue a = args.add(c10::IValue(t));     // borrowed views of the IValues
//   PyfleetValue out{};
//   ... abi->call_value(interp, fn, &a, 1, nullptr, 0, &out) ...
//   c10::IValue result = TakeAbiValueAsIValue(out);  // frees what `out` owned
//
// Note [IValue bridge]
// ~~~~~~~~~~~~~~~~~~~~
// A whole structure crosses at once: a tuple, list or dict of tensors is one PyfleetValue
// tree built on the host (views of the IValues, no copies) and one Python structure
// built in the interpreter, so a model taking or returning `(logits, aux)` or a dict
// costs one crossing, not one per element. Tensors are never copied (a TensorImpl*
// crosses; see Note [Tensor handoff] in interpreter/src/tensor_bridge.h). What comes
// back: None, bool, int, float, str, bytes (as a string IValue: IValue has no bytes),
// Tensor, tuple -> Tuple, list -> List, dict -> Dict. Lists and dicts get the element
// type their elements share (a list of tensors is a TensorList, of ints an IntList),
// else Any. IValues that have no Python form here (objects, futures, devices, ...) are
// INVALID_ARGUMENT naming the kind.
#pragma once

#include <ATen/core/ivalue.h>

#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "pyfleet/interpreter_abi.h"

namespace pyfleet {
class Obj;
}  // namespace pyfleet

namespace pyfleet::internal {

class InterpreterCore;

// Builds borrowed PyfleetValue views of IValues (and Objs). Every view returned stays
// valid while this builder and the viewed IValues live. Not thread-safe.
class AbiValues {
 public:
  explicit AbiValues(const InterpreterCore& core) : core_(core) {}
  AbiValues(const AbiValues&) = delete;
  AbiValues& operator=(const AbiValues&) = delete;

  // A view of `value`. Throws pyfleet::Error INVALID_ARGUMENT for an IValue kind that
  // cannot cross ("IValue of kind Device at args[0] ...").
  PyfleetValue add(const c10::IValue& value, const std::string& where = "argument");
  // An OBJECT view of `obj`, which must live in this builder's interpreter.
  PyfleetValue add(const Obj& obj);
  // Views of `args` and of `kwargs` (names borrowed from the map's keys).
  std::vector<PyfleetValue> addAll(const c10::IValue* args, size_t nargs);
  std::vector<PyfleetKwarg> addKwargs(const std::unordered_map<std::string, c10::IValue>& kwargs);
  // Views the host builds directly: Python bytes, and lists of tensors, str and objects.
  PyfleetValue bytes(const std::string& data);
  PyfleetValue tensors(const std::vector<at::Tensor>& tensors);
  PyfleetValue strings(const std::vector<std::string>& strings);
  PyfleetValue objects(const std::vector<Obj>& objects);

 private:
  PyfleetValue addAt(const c10::IValue& value, std::string& where, int depth);

  const InterpreterCore& core_;
  std::deque<std::vector<PyfleetValue>> arrays_;  // the items of lists, tuples and dicts
};

// fn(*args, **kwargs) in fn's interpreter, the result converted to an IValue in the
// same crossing (the ABI's call_value). Throws pyfleet::Error.
c10::IValue CallReturningIValue(const Obj& fn, const c10::IValue* args, size_t nargs,
                                const std::unordered_map<std::string, c10::IValue>* kwargs);
c10::IValue CallReturningIValue(const Obj& fn, const std::vector<PyfleetValue>& args,
                                const std::vector<PyfleetKwarg>& kwargs = {});
// fn(*args, **kwargs) returning the Python object.
Obj CallReturningObj(const Obj& fn, const std::vector<PyfleetValue>& args,
                     const std::vector<PyfleetKwarg>& kwargs = {});

// Converts a result value to an IValue, taking ownership of what it holds (strings,
// tensors, nested arrays) and leaving `v` NONE. Frees everything even if it throws.
c10::IValue TakeAbiValueAsIValue(PyfleetValue& v);

// Frees what a result value owns (host side: free() and tensor reclaim); `v` becomes NONE.
// Not for values holding OBJECT references (results never do).
void FreeAbiValue(PyfleetValue& v) noexcept;

}  // namespace pyfleet::internal
