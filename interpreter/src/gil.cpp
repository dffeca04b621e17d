#include "interpreter/src/gil.h"
#include "interpreter/src/lifecycle.h"

#include "interpreter/src/state.h"

namespace pyfleet::internal {
namespace {

struct ThreadSlot {
  PyThreadState* state = nullptr;  // owned by CPython's interpreter state
  int depth = 0;                   // nesting of GilScopes on this thread
  bool is_main = false;            // made by Py_InitializeFromConfig: never deleted
};

// See Note [Persistent thread states]: one per thread, per library copy.
thread_local ThreadSlot t_slot;

}  // namespace

GilScope::GilScope(PyfleetInterp* interp) {
  if (t_slot.depth++ > 0) return;  // this thread already holds the GIL
  if (t_slot.state == nullptr) {
    t_slot.state = PyThreadState_New(interp->interp);
  }
  PyEval_RestoreThread(t_slot.state);
  acquired_ = true;
}

GilScope::~GilScope() {
  --t_slot.depth;
  if (acquired_) PyEval_SaveThread();
}

void AdoptThreadState(PyThreadState* ts) {
  t_slot.state = ts;
  t_slot.is_main = true;
}

void DetachThread(PyfleetInterp* interp) {
  if (t_slot.state == nullptr || t_slot.is_main || t_slot.depth > 0) return;
  PyEval_RestoreThread(t_slot.state);
  PyThreadState_Clear(t_slot.state);
  PyThreadState_DeleteCurrent();  // also releases the GIL
  t_slot.state = nullptr;
}

}  // namespace pyfleet::internal

namespace pyfleet::internal {

int FinalizeOnThisThread(PyfleetInterp* interp) {
  if (t_slot.state == nullptr) t_slot.state = PyThreadState_New(interp->interp);
  if (t_slot.depth == 0) PyEval_RestoreThread(t_slot.state);
  // See Note [Finalizing from another thread] in stubs/_pyfleet_bootstrap.py.
  PyObject* bootstrap = PyImport_ImportModule("_pyfleet_bootstrap");
  PyObject* done = bootstrap ? PyObject_CallMethod(bootstrap, "prepare_finalize", nullptr) : nullptr;
  if (done == nullptr) PyErr_Print();
  Py_XDECREF(done);
  Py_XDECREF(bootstrap);
  int rc = Py_FinalizeEx();  // the GIL and every thread state are gone afterwards
  t_slot = ThreadSlot{};
  return rc;
}

}  // namespace pyfleet::internal
