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
// what() text, std::bad_alloc RESOURCE_EXHAUSTED. Nothing unwinds past an ABI entry.
//
// Note [Finalize waits for calls in flight]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// CPython 3.11 makes a thread that takes the GIL while Py_FinalizeEx runs exit on the
// spot (take_gil -> PyThread_exit_thread): a host thread that had checked `finalized`
// and was waiting for the GIL when ~Interpreter began would vanish, or, once finalize
// had freed its thread state, crash. So:
//   * every entry that touches Python holds a CallAdmission for its whole duration: it
//     increments `calls_in_flight` FIRST and reads `finalized` SECOND (both seq_cst), and
//     decrements only after the GIL has been given back;
//   * finalize sets `finalized` FIRST and then, without holding the GIL, waits until
//     `calls_in_flight` is 0 SECOND; only then does it touch CPython.
// Sequential consistency makes at least one side see the other's write: an entry either
// sees `finalized` and returns FAILED_PRECONDITION without touching Python, or finalize
// sees the call and waits for it to return. A call stuck in Python therefore keeps
// finalize waiting (interrupt it first), and finalize from inside a call into the same
// interpreter (a host callback) would wait for itself, so it is refused. Entries without
// a status (obj_retain, obj_release, value_clear, detach_thread, clear_interrupt) are
// admitted the same way and do nothing once refused.
#pragma once

#include <Python.h>

#include <atomic>
#include <exception>
#include <new>
#include <string>
#include <string_view>

#include "interpreter/src/gil.h"
#include "interpreter/src/state.h"
#include "loader/base/pyfleet_status.h"
#include "pyfleet/interpreter_abi.h"

namespace pyfleet::internal {

// Fetches and clears the pending Python exception and returns it as a status whose
// code follows the exception type (see PyfleetCode in interpreter_abi.h). Requires the
// GIL and a pending exception.
PyfleetStatus* StatusFromPythonError();

// FAILED_PRECONDITION "interpreter N has been finalized" (or failed to start).
PyfleetStatus* FinalizedStatus(const PyfleetInterp* interp);

// Admission of one call into `interp`; see Note [Finalize waits for calls in flight].
// Construct it before taking the GIL and destroy it after giving the GIL back.
class CallAdmission {
 public:
  explicit CallAdmission(PyfleetInterp* interp) noexcept : interp_(interp) {
    interp_->calls_in_flight.fetch_add(1, std::memory_order_seq_cst);
    admitted_ = !interp_->finalized.load(std::memory_order_seq_cst);
  }
  ~CallAdmission() { interp_->calls_in_flight.fetch_sub(1, std::memory_order_seq_cst); }
  CallAdmission(const CallAdmission&) = delete;
  CallAdmission& operator=(const CallAdmission&) = delete;

  // False once the interpreter is finalized (or finalizing): do not touch Python.
  bool admitted() const { return admitted_; }

 private:
  PyfleetInterp* interp_;
  bool admitted_ = false;
};

// Runs `body` (returning PyfleetStatus*) with the GIL held and converts any escaping
// C++ exception to a status. FAILED_PRECONDITION once the interpreter is finalized.
template <typename Body>
PyfleetStatus* GuardedEntry(PyfleetInterp* interp, Body&& body) noexcept {
  if (interp == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "interpreter is NULL");
  CallAdmission admission(interp);
  if (!admission.admitted()) return FinalizedStatus(interp);
  try {
    GilScope gil(interp);
    try {
      return body();
    } catch (const std::bad_alloc&) {
      PyErr_Clear();
      return NewPyfleetStatus(PYFLEET_RESOURCE_EXHAUSTED, "out of memory in the interpreter library");
    } catch (const std::exception& e) {
      PyErr_Clear();
      return NewPyfleetStatus(PYFLEET_INTERNAL, e.what());
    } catch (...) {
      PyErr_Clear();
      return NewPyfleetStatus(PYFLEET_INTERNAL, "unknown C++ exception in the interpreter library");
    }
  } catch (const std::exception& e) {
    return NewPyfleetStatus(PYFLEET_INTERNAL, e.what());
  } catch (...) {
    return NewPyfleetStatus(PYFLEET_INTERNAL, "unknown C++ exception in the interpreter library");
  }
}

}  // namespace pyfleet::internal
