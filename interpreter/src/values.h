// File: values.h
//
// PyfleetValue <-> PyObject conversions (the ABI's to_value, from_value, call_value and
// call arguments), nested LIST/TUPLE/DICT values included. Tensors go through
// tensor_bridge.h.
//
//   PyfleetValue v;
//   if (PyfleetStatus* s = PythonToValue(interp, result, "result", &v)) return s;
//   ... v owns its strings, tensors and item arrays ...
//   ClearValue(&v, /*python_alive=*/true);
//
// Both directions stop at PYFLEET_VALUE_MAX_DEPTH levels of nesting (which also ends a
// list that contains itself) with INVALID_ARGUMENT.
#pragma once

#include <Python.h>

#include "pyfleet/interpreter_abi.h"

namespace pyfleet::internal {

// A new reference for a borrowed value (nested items too). Requires the GIL; NULL with
// an exception set.
PyObject* ValueToPython(PyfleetInterp* interp, const PyfleetValue& value);

// Fills `out` (caller-owned; see PyfleetValue) from `obj`. `root` names the object in
// error messages ("result" gives "... at result[1]['aux'] ..."). Requires the GIL.
// Returns nullptr, or a status for an unsupported type (INVALID_ARGUMENT, naming the
// type and where it sits), an int outside int64 (OUT_OF_RANGE) or a failed conversion;
// then `out` is NONE and owns nothing.
PyfleetStatus* PythonToValue(PyfleetInterp* interp, PyObject* obj, const char* root, PyfleetValue* out);

// True if `value` holds an OBJECT anywhere (then releasing it needs the GIL).
bool HoldsObject(const PyfleetValue& value);

// Releases what a result value owns, recursively, and sets it to NONE. OBJECT
// references are dropped with the GIL (which the caller must hold) if `python_alive`,
// else forgotten (they died with their interpreter).
void ClearValue(PyfleetValue* value, bool python_alive);

}  // namespace pyfleet::internal
