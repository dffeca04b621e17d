// File: gil.h
//
// GilScope: holds this interpreter's GIL for a C++ scope, using the calling thread's
// persistent PyThreadState.
//
//   PyfleetStatus* Run(PyfleetInterp* interp, const char* code) {
//     GilScope gil(interp);
//     ... CPython calls ...
//   }   // GIL released here
//
// Note [Persistent thread states]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Each (host thread, interpreter) pair keeps ONE PyThreadState for its lifetime,
// created on first use with PyThreadState_New, which also registers it as the
// thread's PyGILState state so torch's pybind11 gil_scoped_acquire reuses it.
// Creating and deleting one per call (PyGILState_Ensure/Release) cost ~15% per call
// in the prototype (ARCHITECTURE.md §8). The state is stored in a thread_local of
// this library copy, so it is per interpreter too. A thread that is done with an
// interpreter calls the ABI's detach_thread. Scopes nest: an inner GilScope on a
// thread that already holds this GIL does nothing.
#pragma once

#include <Python.h>

struct PyfleetInterp;

namespace pyfleet::internal {

class GilScope {
 public:
  explicit GilScope(PyfleetInterp* interp);
  ~GilScope();
  GilScope(const GilScope&) = delete;
  GilScope& operator=(const GilScope&) = delete;

 private:
  bool acquired_ = false;
};

// Records `ts` (the state Py_InitializeFromConfig made) as this thread's state.
void AdoptThreadState(PyThreadState* ts);
// Deletes the calling thread's state, if it has one and it is not the main one.
void DetachThread(PyfleetInterp* interp);

}  // namespace pyfleet::internal
