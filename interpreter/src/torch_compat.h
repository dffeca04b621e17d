// File: torch_compat.h
//
// The one place where the interpreter library's C++ meets what differs between the
// LibTorch releases pyfleet builds for (1.13 on Debian 12, 2.6 on Debian 13). Only
// tensor_bridge.cpp includes it. See Note [Version seams] in python_compat.h.
//
// Note [What differs in torch 2.x for the tensor handoff]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// * The tag: torch 1.13 keeps the PyInterpreter that first wrapped a TensorImpl in the
//   TensorImpl itself (pyobj_interpreter()); torch 2.x moved it into a
//   c10::impl::PyObjectSlot (TensorImpl::pyobj_slot()->pyobj_interpreter()). Both
//   read the tag with an acquire load and never change it once set.
// * THPVariable_Wrap takes its TensorBase by value in 1.13 and by const reference in
//   2.x: another mangled name and another function type.
// * StorageImpls carry a PyObjectSlot too from 2.2 on, but torch 2.x handles a storage
//   that another interpreter wrapped first itself: THPStorage_Wrap then makes a new
//   StorageImpl over the same refcounted data (torch/csrc/Storage.cpp), so aliasing
//   the TensorImpl (Note [Tensor handoff]) is all pyfleet has to do on either release.
// * c10's warning handlers: 1.13 passes process() the location, message and verbatim
//   flag and keeps the handler in c10::Warning; 2.x passes a c10::Warning and keeps it
//   in c10::WarningUtils. DroppingWarningHandler hides which.
// * THPVariable's layout starts with PyObject_HEAD and the MaybeOwned<at::Tensor> on
//   both (2.x appends post_accumulate_grad_hooks, which pyfleet never reads).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorImpl.h>
#include <c10/core/impl/PyInterpreter.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <Python.h>

#include <string>

namespace pyfleet::internal::torch_compat {

#if TORCH_VERSION_MAJOR >= 2
using WrapFn = PyObject* (*)(const at::TensorBase&);
inline constexpr char kThpVariableWrap[] = "_Z16THPVariable_WrapRKN2at10TensorBaseE";

inline c10::impl::PyInterpreter* TensorTag(c10::TensorImpl* impl) {
  return impl->pyobj_slot()->pyobj_interpreter();
}
#else
using WrapFn = PyObject* (*)(at::TensorBase);
inline constexpr char kThpVariableWrap[] = "_Z16THPVariable_WrapN2at10TensorBaseE";

inline c10::impl::PyInterpreter* TensorTag(c10::TensorImpl* impl) { return impl->pyobj_interpreter(); }
#endif

// A c10 warning handler that drops the warnings `Drop` selects by message and hands
// every other one to the handler `Next()` names (nullptr: none).
class DroppingWarningHandler : public c10::WarningHandler {
 public:
#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning& warning) override {
    if (Drop(warning.msg())) return;
    if (c10::WarningHandler* next = Next()) next->process(warning);
  }
#else
  void process(const c10::SourceLocation& location, const std::string& msg, const bool verbatim) override {
    if (Drop(msg)) return;
    if (c10::WarningHandler* next = Next()) next->process(location, msg, verbatim);
  }
#endif

 protected:
  virtual bool Drop(const std::string& msg) const = 0;
  virtual c10::WarningHandler* Next() const = 0;
};

// This thread's c10 warning handler.
inline c10::WarningHandler* GetWarningHandler() {
#if TORCH_VERSION_MAJOR >= 2
  return c10::WarningUtils::get_warning_handler();
#else
  return c10::Warning::get_warning_handler();
#endif
}

inline void SetWarningHandler(c10::WarningHandler* handler) {
#if TORCH_VERSION_MAJOR >= 2
  c10::WarningUtils::set_warning_handler(handler);
#else
  c10::Warning::set_warning_handler(handler);
#endif
}

// Both releases: c10::impl::PyInterpreter* getPyInterpreter() in libtorch_python.
inline constexpr char kGetPyInterpreter[] = "_Z16getPyInterpreterv";

}  // namespace pyfleet::internal::torch_compat
