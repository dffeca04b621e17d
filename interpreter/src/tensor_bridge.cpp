#include "interpreter/src/tensor_bridge.h"

#include <ATen/core/Tensor.h>
#include <c10/core/impl/PyInterpreter.h>
#include <c10/util/Exception.h>
#include <dlfcn.h>

#include <cstring>

#include "interpreter/importer/py_ref.h"
#include "interpreter/src/state.h"

namespace pyfleet::internal {
namespace {

using TensorImplPtr = c10::intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
using WrapFn = PyObject* (*)(at::TensorBase);
using GetPyInterpreterFn = c10::impl::PyInterpreter* (*)();

// Mirror of torch 1.13's THPVariable (torch/csrc/autograd/python_variable.h): we may
// not include that header (it needs pybind11 and binds to one libtorch_python), and
// THPVariable_Unpack is inline there.
struct THPVariableMirror {
  PyObject_HEAD
  c10::MaybeOwned<at::Tensor> cdata;
  PyObject* backward_hooks;
};

// Resolves a symbol in this interpreter's libtorch_python copy, importing torch first
// if `import_torch`. Requires the GIL. NULL with an exception set if unavailable.
void* TorchSymbol(PyfleetInterp* interp, const char* name, bool import_torch) {
  if (interp->torch_python == nullptr && import_torch) {
    PyRef torch = PyRef::steal(PyImport_ImportModule("torch"));
    if (!torch) return nullptr;
  }
  if (interp->torch_python == nullptr) {
    if (import_torch) PyErr_SetString(PyExc_RuntimeError, "pyfleet: torch._C was not loaded through pyfleet");
    return nullptr;
  }
  void* sym = dlsym(interp->torch_python, name);
  if (sym == nullptr && import_torch) {
    PyErr_Format(PyExc_RuntimeError, "pyfleet: %s not found in libtorch_python: %s", name, dlerror());
  }
  return sym;
}

PyObject* WrapOnce(WrapFn wrap, const at::Tensor& t) { return wrap(t); }

}  // namespace

PyObject* WrapTensor(PyfleetInterp* interp, void* impl) {
  if (interp->thp_variable_wrap == nullptr) {
    interp->thp_variable_wrap = TorchSymbol(interp, "_Z16THPVariable_WrapN2at10TensorBaseE", true);
    if (interp->thp_variable_wrap == nullptr) return nullptr;
  }
  auto wrap = reinterpret_cast<WrapFn>(interp->thp_variable_wrap);
  at::Tensor t;
  if (impl != nullptr) {
    t = at::Tensor(TensorImplPtr::reclaim_copy(static_cast<c10::TensorImpl*>(impl)));
  }
  try {
    return WrapOnce(wrap, t);
  } catch (const c10::Error& e) {
    // See Note [Tensor handoff]: tagged by another interpreter -> hand over an alias.
    if (std::strstr(e.what(), "torch deploy interpreter") == nullptr) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
      return nullptr;
    }
  }
  try {
    return WrapOnce(wrap, t.alias());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
}

int IsTensor(PyfleetInterp* interp, PyObject* obj) {
  if (interp->thp_variable_class == nullptr) {
    interp->thp_variable_class = TorchSymbol(interp, "THPVariableClass", false);  // NULL until torch loads
  }
  auto* cls = static_cast<PyObject**>(interp->thp_variable_class);
  if (cls == nullptr || *cls == nullptr) return 0;
  return PyObject_IsInstance(obj, *cls);
}

void* UnpackTensor(PyfleetInterp* interp, PyObject* obj) {
  const at::Tensor& t = *reinterpret_cast<THPVariableMirror*>(obj)->cdata;
  TensorImplPtr ptr = t.getIntrusivePtr();
  return ptr.release();
}

void ReleaseTensor(void* impl) {
  if (impl != nullptr) TensorImplPtr::reclaim(static_cast<c10::TensorImpl*>(impl));
}

void DisarmTorch(PyfleetInterp* interp) {
  if (interp->torch_python == nullptr) return;
  auto get = reinterpret_cast<GetPyInterpreterFn>(dlsym(interp->torch_python, "_Z16getPyInterpreterv"));
  if (get == nullptr) return;
  if (c10::impl::PyInterpreter* self = get()) self->disarm();
}

}  // namespace pyfleet::internal
