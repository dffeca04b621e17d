// File: gil.h
//
// GilScope: holds this interpreter's GIL for a C++ scope, using the calling thread's
// persistent PyThreadState; plus the per-thread bookkeeping behind the ABI's interrupt.
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
//
// Note [Deadline interrupts]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// The ABI's interrupt stops a pure-Python call past its deadline the way
// PyThreadState_SetAsyncExc does: it sets the thread state's pending asynchronous
// exception and arms the eval breaker, and CPython raises it when that thread next
// checks the breaker (a backward jump, a call, a function start). Three things make
// that safe:
//   * Only a thread INSIDE a call gets it. A host thread's GilScope nesting depth is
//     atomic and counts from before the GIL is taken until the outermost scope has
//     dropped back to 0, still under the GIL; interrupt (under the GIL) looks the thread
//     up in this copy's registry of thread slots and sets the exception only when its
//     depth is > 0. An idle thread keeps nothing pending for its next, unrelated call.
//   * It lands on the right thread state: the one in the slot, not the first state with
//     that thread id, which a leaked state of an exited host thread (one that never
//     called detach_thread) can share, since pthread ids are reused.
//   * Nothing outlives the call. When the outermost GilScope ends and the exception was
//     never raised (the call returned without running more bytecode), it is consumed
//     there by evaluating a constant, which is also how CPython disarms its eval breaker
//     again (PyThreadState_SetAsyncExc(id, NULL) would leave it armed).
// Threads that Python started itself (threading) have no slot: they are interrupted
// while they have a frame. The exception "class" is _pyfleet_bootstrap._DeadlineExceeded,
// a TimeoutError subclass whose constructor returns TimeoutError("pyfleet: call deadline
// exceeded"): CPython raises an asynchronous exception by class, with no arguments, and
// this is how the exception Python code sees (and the status the host gets, see
// errors.cpp) is a plain builtins.TimeoutError with that message.
#pragma once

#include <Python.h>

#include <cstdint>

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
// Deletes the calling thread's state, if it has one, it is not the main one and the
// thread is not inside a call.
void DetachThread(PyfleetInterp* interp);
// True while the calling thread is inside a GilScope of this interpreter.
bool InCallOnThisThread();
// Forgets the calling thread's state after Py_FinalizeEx deleted it.
void ForgetThreadStateAfterFinalize();

// Sets `exc_type` as the asynchronous exception of the thread `thread_id` if it is
// running Python in this interpreter (see Note [Deadline interrupts]). Returns the number
// of thread states affected. Requires the GIL.
int InterruptThread(PyfleetInterp* interp, uint64_t thread_id, PyObject* exc_type);
// Withdraws a not yet raised interrupt of thread `thread_id`. Requires the GIL.
void ClearThreadInterrupt(PyfleetInterp* interp, uint64_t thread_id);

}  // namespace pyfleet::internal
