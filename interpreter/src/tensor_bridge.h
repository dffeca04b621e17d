// File: tensor_bridge.h
//
// Host at::Tensor <-> this interpreter's torch.Tensor, without copies. The only
// translation unit of interpreter/ that includes LibTorch headers is tensor_bridge.cpp.
//
//   PyObject* t = WrapTensor(interp, impl);   // impl: borrowed c10::TensorImpl*
//   void* back = UnpackTensor(interp, t);     // +1 c10::TensorImpl*
//
// Note [Tensor handoff]
// ~~~~~~~~~~~~~~~~~~~~~
// THPVariable_Wrap of this interpreter's libtorch_python copy wraps the host's
// TensorImpl itself, so data and TensorImpl are shared (in-place ops are seen by the
// host). torch 1.13 tags a TensorImpl with the first interpreter that wraps it, forever
// (ARCHITECTURE.md §9); another interpreter then gets `t.alias()` — a new TensorImpl on
// the same storage, so data is still shared but metadata changes (resize_, set_) are not.
// Callers never see the "already been used by another torch deploy interpreter" error.
#pragma once

#include <Python.h>

struct PyfleetInterp;

namespace pyfleet::internal {

// A new reference to a torch.Tensor for the borrowed c10::TensorImpl* `impl` (NULL
// gives an undefined tensor -> None). Imports torch if needed. Requires the GIL; NULL
// with an exception set on failure.
PyObject* WrapTensor(PyfleetInterp* interp, void* impl);

// 1 if `obj` is a torch.Tensor of this interpreter, 0 if not, -1 with an exception.
// Never imports torch (a tensor cannot exist before torch is imported).
int IsTensor(PyfleetInterp* interp, PyObject* obj);

// A +1 c10::TensorImpl* for the tensor `obj` (IsTensor must be 1). Requires the GIL.
void* UnpackTensor(PyfleetInterp* interp, PyObject* obj);

// Drops a +1 c10::TensorImpl* (NULL allowed). No GIL needed.
void ReleaseTensor(void* impl);

// Disarms torch's PyInterpreter of this interpreter (before Py_FinalizeEx), if torch
// was imported. No GIL needed.
void DisarmTorch(PyfleetInterp* interp);

}  // namespace pyfleet::internal
