// File: gil.cpp — see gil.h.
#include "interpreter/src/gil.h"

#include <pythread.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

#include "interpreter/importer/py_ref.h"
#include "interpreter/src/lifecycle.h"
#include "interpreter/src/python_compat.h"
#include "interpreter/src/state.h"


namespace pyfleet::internal {
namespace {

struct ThreadSlot;

// Every thread slot of this library copy that has a thread state, so interrupt can
// find a thread by id (see Note [Deadline interrupts]). Leaked: thread_local slots
// unregister at thread exit, which may come after static destructors.
struct SlotRegistry {
  std::mutex mu;
  std::vector<ThreadSlot*> slots;  // guarded by mu
};

SlotRegistry& Registry() {
  static SlotRegistry* registry = new SlotRegistry();
  return *registry;
}

struct ThreadSlot {
  // Owned by CPython's interpreter state. Written by this thread only; read by
  // interrupt (other threads, holding the GIL and the registry's mutex).
  std::atomic<PyThreadState*> state{nullptr};
  // Nesting of GilScopes on this thread; read by other threads (interrupt) under the
  // registry's mutex. See Note [Deadline interrupts] for when it changes.
  std::atomic<int> depth{0};
  bool is_main = false;            // made by Py_InitializeFromConfig: never deleted
  bool registered = false;
  uint64_t thread_id = 0;          // PyThread_get_thread_ident() == pthread_self()

  void registerOnce() {
    if (registered) return;
    thread_id = PyThread_get_thread_ident();
    std::lock_guard<std::mutex> lock(Registry().mu);
    Registry().slots.push_back(this);
    registered = true;
  }

  ~ThreadSlot() {
    if (!registered) return;
    std::lock_guard<std::mutex> lock(Registry().mu);
    auto& slots = Registry().slots;
    slots.erase(std::remove(slots.begin(), slots.end(), this), slots.end());
  }
};

// See Note [Persistent thread states]: one per thread, per library copy.
thread_local ThreadSlot t_slot;

// Sets `exc_type` as the pending asynchronous exception of `ts`, as
// PyThreadState_SetAsyncExc does. Requires the GIL.
void SetAsyncExc(PyThreadState* ts, PyObject* exc_type) {
  Py_INCREF(exc_type);
  Py_XSETREF(ts->async_exc, exc_type);
  pyfleet_signal_async_exc(ts);
}

// Raises and clears the calling thread's pending asynchronous exception, if any, so that
// CPython also disarms its eval breaker. Keeps any other pending exception. Requires the
// GIL.
void DropPendingInterrupt(PyThreadState* ts) {
  if (ts->async_exc == nullptr) return;
  PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
  PyErr_Fetch(&type, &value, &tb);
  PyRef code = PyRef::steal(Py_CompileString("None", "<pyfleet interrupt>", Py_eval_input));
  if (code) {
    PyRef globals = PyRef::steal(PyDict_New());
    if (globals) PyRef::steal(PyEval_EvalCode(code.get(), globals.get(), globals.get()));
  }
  PyErr_Clear();
  Py_CLEAR(ts->async_exc);  // only if evaluating did not consume it
  PyErr_Restore(type, value, tb);
}

}  // namespace

GilScope::GilScope(PyfleetInterp* interp) {
  if (t_slot.depth.fetch_add(1) > 0) return;  // this thread already holds the GIL
  PyThreadState* state = t_slot.state.load(std::memory_order_relaxed);
  if (state == nullptr) {
    state = PyThreadState_New(interp->interp);
    t_slot.state.store(state);
    t_slot.registerOnce();
  }
  PyEval_RestoreThread(state);
  acquired_ = true;
}

GilScope::~GilScope() {
  t_slot.depth.fetch_sub(1);  // 0 for the outermost scope: no longer interruptible
  if (!acquired_) return;
  PyThreadState* state = t_slot.state.load(std::memory_order_relaxed);
  if (state->async_exc != nullptr) DropPendingInterrupt(state);
  PyEval_SaveThread();
}

void AdoptThreadState(PyThreadState* ts) {
  t_slot.state.store(ts);
  t_slot.is_main = true;
  t_slot.registerOnce();
}

void DetachThread(PyfleetInterp* interp) {
  PyThreadState* state = t_slot.state.load(std::memory_order_relaxed);
  if (state == nullptr || t_slot.is_main || t_slot.depth.load() > 0) return;
  PyEval_RestoreThread(state);
  PyThreadState_Clear(state);
  t_slot.state.store(nullptr);  // under the GIL: interrupt never sees a deleted state
  PyThreadState_DeleteCurrent();  // also releases the GIL
}

bool InCallOnThisThread() { return t_slot.depth.load() > 0; }

void ForgetThreadStateAfterFinalize() {
  t_slot.state.store(nullptr);
  t_slot.is_main = false;
  t_slot.depth.store(0);
}

int InterruptThread(PyfleetInterp* interp, uint64_t thread_id, PyObject* exc_type) {
  bool host_thread = false;
  PyThreadState* target = nullptr;  // the host thread's state, if it is inside a call
  {
    std::lock_guard<std::mutex> lock(Registry().mu);
    for (const ThreadSlot* slot : Registry().slots) {
      PyThreadState* state = slot->state.load();
      if (slot->thread_id != thread_id || state == nullptr) continue;
      host_thread = true;
      if (slot->depth.load() > 0) target = state;
    }
  }
  if (host_thread) {
    if (target == nullptr) return 0;  // not in a call: leave nothing pending
    SetAsyncExc(target, exc_type);
    return 1;
  }
  // A thread Python started itself (threading): it runs Python while it has a frame.
  int affected = 0;
  for (PyThreadState* ts = PyInterpreterState_ThreadHead(interp->interp); ts != nullptr; ts = PyThreadState_Next(ts)) {
    if (ts->thread_id != thread_id) continue;
    PyRef frame = PyRef::steal(reinterpret_cast<PyObject*>(PyThreadState_GetFrame(ts)));
    if (!frame) continue;
    SetAsyncExc(ts, exc_type);
    ++affected;
  }
  return affected;
}

void ClearThreadInterrupt(PyfleetInterp* interp, uint64_t thread_id) {
  if (thread_id == PyThread_get_thread_ident()) {
    DropPendingInterrupt(PyThreadState_Get());
    return;
  }
  for (PyThreadState* ts = PyInterpreterState_ThreadHead(interp->interp); ts != nullptr;
       ts = PyThreadState_Next(ts)) {
    if (ts->thread_id == thread_id) Py_CLEAR(ts->async_exc);
  }
}

int FinalizeOnThisThread(PyfleetInterp* interp) {
  if (t_slot.state.load() == nullptr) {
    t_slot.state.store(PyThreadState_New(interp->interp));
    t_slot.registerOnce();
  }
  if (t_slot.depth.load() == 0) PyEval_RestoreThread(t_slot.state.load());
  // See Note [Finalizing from another thread] in stubs/_pyfleet_bootstrap.py.
  PyObject* bootstrap = PyImport_ImportModule("_pyfleet_bootstrap");
  PyObject* done = bootstrap ? PyObject_CallMethod(bootstrap, "prepare_finalize", nullptr) : nullptr;
  if (done == nullptr) PyErr_Print();
  Py_XDECREF(done);
  Py_XDECREF(bootstrap);
  int rc = Py_FinalizeEx();  // the GIL and every thread state are gone afterwards
  ForgetThreadStateAfterFinalize();
  return rc;
}

}  // namespace pyfleet::internal
