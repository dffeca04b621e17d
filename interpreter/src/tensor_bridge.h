// File: tensor_bridge.h
//
// Host at::Tensor <-> this interpreter's torch.Tensor, without copies; plus the other
// two places where the interpreter library talks to LibTorch itself: disarming torch's
// PyInterpreter before finalize, and the filter for torch's duplicate-registration
// warning while an extension loads. The translation units of interpreter/ that include
// LibTorch headers are this one's and registration_gate.cpp.
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
// WrapTensor reads the tag (TensorImpl::pyobj_interpreter()) and compares it with this
// interpreter's PyInterpreter (getPyInterpreter() of its libtorch_python copy) BEFORE
// wrapping: letting THPVariable_Wrap throw instead costs ~140 us per handoff, because a
// c10::Error captures a backtrace in torch 1.13. The throw is still caught, for the one
// case the check cannot see: an untagged tensor that another interpreter tags between
// our check and our wrap.
#pragma once

#include <Python.h>

#include <cstddef>

#include "pyfleet/interpreter_abi.h"

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

// The importer's RecordTensorFactory for this interpreter (Note [Storages that outlive
// their interpreter] in interpreter/importer/package_importer.h): a torch.uint8 tensor of
// `nbytes` bytes over `view.data`, whose storage's deleter releases `view` and touches no
// Python. Requires the GIL; NULL with an exception on failure (`view` released).
PyObject* RecordTensor(PyfleetRecordView view, size_t nbytes);

// Disarms torch's PyInterpreter of this interpreter (before Py_FinalizeEx), if torch
// was imported. No GIL needed.
void DisarmTorch(PyfleetInterp* interp);

// Note [Duplicate registration warning]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Each interpreter loads its own copy of libtorch_python (ARCHITECTURE.md §4), whose
// static initializers register `aten::get_gradients` (torch/csrc/jit/runtime/
// register_distributed_ops.cpp) with the one process-global dispatcher. From the second
// copy on, c10's OperatorEntry::registerKernel says so with TORCH_WARN ("Overriding a
// previously registered kernel for the same operator and the same dispatch key ...
// operator: aten::get_gradients(int context_id) -> ..."). The warning goes to c10's
// warning handler, which is per thread; outside a Python binding that is c10's base
// handler, which logs through glog (Debian's libc10 links libglog), and glog, never
// initialized by anyone, first prints "WARNING: Logging before InitGoogleLogging() is
// written to STDERR". Both lines are harmless here and alarm users.
// While _PyImport_FindSharedFuncptr asks the host for an extension copy, a
// ScopedRegistrationWarningFilter makes the calling thread's handler one that drops that
// exact warning (the message AND operator aten::get_gradients, or torch 2.x's
// inductor::resize_storage_bytes_ Functionalize kernel) and hands every other
// warning to the handler it replaced, so nothing else changes; glog is then not reached
// and prints no "Logging before" line either. Set PYFLEET_SHOW_TORCH_REGISTRATION_WARNINGS=1
// in the environment to keep the warning (read at every extension load).
class ScopedRegistrationWarningFilter {
 public:
  ScopedRegistrationWarningFilter() noexcept;
  ~ScopedRegistrationWarningFilter();
  ScopedRegistrationWarningFilter(const ScopedRegistrationWarningFilter&) = delete;
  ScopedRegistrationWarningFilter& operator=(const ScopedRegistrationWarningFilter&) = delete;

 private:
  void* previous_ = nullptr;  // c10::WarningHandler* of this thread, restored on exit
  bool installed_ = false;
};

}  // namespace pyfleet::internal
