// File: errors.h
//
// Building PyfleetStatus values, and the one place where errors of any kind become
// a status at the C ABI (STYLE.md §7.2):
//
//   PyfleetStatus* Run(PyfleetInterp* interp, const char* code) {
//     return GuardedEntry(interp, [&]() -> PyfleetStatus* {
//       if (PyRun_String(...) == nullptr) return StatusFromPythonError();
//       return nullptr;
//     });
//   }
//
// A pending Python exception keeps its qualified type name, message and formatted
// traceback; a C++ exception (e.g. c10::Error from torch) becomes INTERNAL with its
// what() text. Nothing unwinds past an ABI entry.
#pragma once

#include <Python.h>

#include <exception>
#include <string>
#include <string_view>

#include "interpreter/src/gil.h"
#include "interpreter/src/state.h"
#include "loader/base/pyfleet_status.h"
#include "pyfleet/interpreter_abi.h"

namespace pyfleet::internal {

// Fetches and clears the pending Python exception and returns it as a status whose
// code follows the exception type (ImportError -> NOT_FOUND, TypeError/ValueError ->
// INVALID_ARGUMENT, ...). Requires the GIL and a pending exception.
PyfleetStatus* StatusFromPythonError();

// Runs `body` (returning PyfleetStatus*) with the GIL held and converts any escaping
// C++ exception to a status. FAILED_PRECONDITION once the interpreter is finalized.
template <typename Body>
PyfleetStatus* GuardedEntry(PyfleetInterp* interp, Body&& body) noexcept {
  if (interp == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "interpreter is NULL");
  if (interp->finalized.load()) {
    return NewPyfleetStatus(PYFLEET_FAILED_PRECONDITION,
                      "interpreter " + std::to_string(interp->index) + " has been finalized");
  }
  try {
    GilScope gil(interp);
    try {
      return body();
    } catch (const std::exception& e) {
      PyErr_Clear();
      return NewPyfleetStatus(PYFLEET_INTERNAL, e.what());
    }
  } catch (const std::exception& e) {
    return NewPyfleetStatus(PYFLEET_INTERNAL, e.what());
  } catch (...) {
    return NewPyfleetStatus(PYFLEET_INTERNAL, "unknown C++ exception in the interpreter library");
  }
}

}  // namespace pyfleet::internal
