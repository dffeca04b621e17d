// File: lifecycle.h
//
// The ABI's create and finalize entries (see interpreter_abi.h for their contracts).
#pragma once

#include <Python.h>

#include "pyfleet/interpreter_abi.h"

extern "C" PyObject* PyInit_pyfleet(void);  // interpreter/importer: module `pyfleet`

namespace pyfleet::internal {

PyfleetStatus* CreateInterpreter(const PyfleetInterpConfig* config, PyfleetInterp** out) noexcept;
PyfleetStatus* FinalizeInterpreter(PyfleetInterp* interp) noexcept;

// Takes the GIL with the calling thread's state and runs Py_FinalizeEx. Returns its rc.
int FinalizeOnThisThread(PyfleetInterp* interp);

}  // namespace pyfleet::internal
