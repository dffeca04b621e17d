// File: pyfleet_status.h
//
// Making and freeing the C ABI's PyfleetStatus (pyfleet/interpreter_abi.h), used by
// both sides of the ABI: the interpreter library and the archive callbacks make them,
// the host and the importer consume them.
//
//   PyfleetStatus* s = NewPyfleetStatus(PYFLEET_NOT_FOUND, "no record 'm/x.py'");
//   PyfleetStatus* t = PyfleetStatusFromStatus(archive.read(i).status());  // NULL if OK
//   FreePyfleetStatus(s);
//
// Everything is malloc'ed, as the ABI promises, so any module of the process may free
// a status, and nothing here throws: these run where a C++ exception must not escape.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "pyfleet/interpreter_abi.h"

namespace pyfleet::internal {

// A malloc'ed, NUL-terminated copy of `s`; nullptr if out of memory.
char* DupCString(std::string_view s) noexcept;

// A new status. `code` PYFLEET_OK is stored as PYFLEET_UNKNOWN (a status is an error);
// empty `python_type` / `traceback` are stored as NULL. nullptr only if out of memory.
PyfleetStatus* NewPyfleetStatus(PyfleetCode code, std::string_view message,
                                std::string_view python_type = {},
                                std::string_view traceback = {}) noexcept;

// `status` as a PyfleetStatus (same code and message), or nullptr if it is OK.
PyfleetStatus* PyfleetStatusFromStatus(const absl::Status& status) noexcept;

// Frees a status and its strings (nullptr allowed).
void FreePyfleetStatus(PyfleetStatus* status) noexcept;

}  // namespace pyfleet::internal
