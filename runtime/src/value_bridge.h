// File: value_bridge.h
//
// Host values <-> the C ABI's PyfleetValue: the one place where a pyfleet::Value becomes
// what crosses into an interpreter, and a result comes back. Tensors cross as
// c10::TensorImpl* (no copy): borrowed on the way in, a +1 reference on the way out.
//
//   PyfleetValue arg = ToAbiValue(core, Value(at::ones({2})));   // borrowed view
//   Value result = TakeAbiValue(result_value);                    // takes ownership
#pragma once

#include "pyfleet/interpreter_abi.h"
#include "pyfleet/value.h"

namespace pyfleet::internal {

class InterpreterCore;

// A borrowed ABI view of `value`, valid while `value` lives. An Obj must live in
// `core`'s interpreter (INVALID_ARGUMENT naming both otherwise).
PyfleetValue ToAbiValue(const InterpreterCore& core, const Value& value);

// Takes ownership of a result value (leaving `v` NONE) and returns it as a Value.
Value TakeAbiValue(PyfleetValue& v);

}  // namespace pyfleet::internal
