// File: values.h
//
// PyfleetValue <-> PyObject conversions (the ABI's to_value / from_value and call
// arguments). Tensors go through tensor_bridge.h.
#pragma once

#include <Python.h>

#include "pyfleet/interpreter_abi.h"

namespace pyfleet::internal {

// A new reference for a borrowed value. Requires the GIL; NULL with an exception set.
PyObject* ValueToPython(PyfleetInterp* interp, const PyfleetValue& value);

// Fills `out` (caller-owned; see PyfleetValue) from `obj`. Requires the GIL. Returns
// nullptr, or a status for an unsupported type or a failed conversion.
PyfleetStatus* PythonToValue(PyfleetInterp* interp, PyObject* obj, PyfleetValue* out);

// Releases what a result value owns. Requires the GIL for OBJECT values only.
void ClearValue(PyfleetValue* value);

}  // namespace pyfleet::internal
