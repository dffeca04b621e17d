#include "interpreter/src/tensor_bridge.h"

#include <ATen/core/Tensor.h>
#include <c10/core/impl/PyInterpreter.h>
#include <c10/util/Exception.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "interpreter/importer/py_ref.h"
#include "interpreter/src/state.h"
#include "interpreter/src/torch_compat.h"

namespace pyfleet::internal {
namespace {

using TensorImplPtr = c10::intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
using torch_compat::WrapFn;
using GetPyInterpreterFn = c10::impl::PyInterpreter* (*)();

// The head of torch's THPVariable (torch/csrc/autograd/python_variable.h), the same on
// 1.13 and 2.x: we may not include that header (it needs pybind11 and binds to one
// libtorch_python), and THPVariable_Unpack is inline there. Only `cdata` is read.
struct THPVariableMirror {
  PyObject_HEAD
  c10::MaybeOwned<at::Tensor> cdata;
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

// This interpreter's c10::impl::PyInterpreter (the tag torch puts on the TensorImpls it
// wraps), or nullptr if torch has not been loaded through pyfleet. Requires the GIL.
c10::impl::PyInterpreter* SelfPyInterpreter(PyfleetInterp* interp) {
  if (interp->py_interpreter == nullptr && interp->torch_python != nullptr) {
    auto get = reinterpret_cast<GetPyInterpreterFn>(dlsym(interp->torch_python, torch_compat::kGetPyInterpreter));
    if (get != nullptr) interp->py_interpreter = get();
  }
  return static_cast<c10::impl::PyInterpreter*>(interp->py_interpreter);
}

// See Note [Duplicate registration warning] in tensor_bridge.h.
bool IsDuplicateGetGradientsRegistration(const std::string& msg) {
  if (msg.find("Overriding a previously registered kernel") == std::string::npos) return false;
  // The kernels every libtorch_python copy registers again: 1.13's and 2.x's.
  for (const char* op : {"operator: aten::get_gradients(", "operator: inductor::resize_storage_bytes_("}) {
    if (msg.find(op) != std::string::npos) return true;
  }
  return false;
}

// The handler a ScopedRegistrationWarningFilter replaced on this thread.
thread_local c10::WarningHandler* t_previous_handler = nullptr;

class RegistrationWarningFilter final : public torch_compat::DroppingWarningHandler {
 protected:
  bool Drop(const std::string& msg) const override { return IsDuplicateGetGradientsRegistration(msg); }
  c10::WarningHandler* Next() const override { return t_previous_handler; }
};

RegistrationWarningFilter g_registration_filter;  // per library copy; stateless

bool ShowRegistrationWarnings() {
  const char* env = std::getenv("PYFLEET_SHOW_TORCH_REGISTRATION_WARNINGS");
  return env != nullptr && *env != '\0' && std::strcmp(env, "0") != 0;
}

}  // namespace

ScopedRegistrationWarningFilter::ScopedRegistrationWarningFilter() noexcept {
  if (ShowRegistrationWarnings()) return;
  c10::WarningHandler* current = torch_compat::GetWarningHandler();
  if (current == &g_registration_filter) return;  // nested load on this thread
  previous_ = current;
  t_previous_handler = current;
  torch_compat::SetWarningHandler(&g_registration_filter);
  installed_ = true;
}

ScopedRegistrationWarningFilter::~ScopedRegistrationWarningFilter() {
  if (!installed_) return;
  torch_compat::SetWarningHandler(static_cast<c10::WarningHandler*>(previous_));
  t_previous_handler = nullptr;
}

PyObject* WrapTensor(PyfleetInterp* interp, void* impl) {
  if (interp->thp_variable_wrap == nullptr) {
    interp->thp_variable_wrap = TorchSymbol(interp, torch_compat::kThpVariableWrap, true);
    if (interp->thp_variable_wrap == nullptr) return nullptr;
  }
  auto wrap = reinterpret_cast<WrapFn>(interp->thp_variable_wrap);
  at::Tensor t;
  if (impl != nullptr) {
    auto* tensor_impl = static_cast<c10::TensorImpl*>(impl);
    t = at::Tensor(TensorImplPtr::reclaim_copy(tensor_impl));
    // See Note [Tensor handoff]: check the tag up front. A c10::Error costs ~140 us in
    // torch 1.13 (it captures a backtrace), far more than the wrap itself.
    c10::impl::PyInterpreter* tag = torch_compat::TensorTag(tensor_impl);
    c10::impl::PyInterpreter* self = tag != nullptr ? SelfPyInterpreter(interp) : nullptr;
    if (tag != nullptr && self != nullptr && tag != self) {
      try {
        return WrapOnce(wrap, t.alias());
      } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
      }
    }
  }
  try {
    return WrapOnce(wrap, t);
  } catch (const c10::Error& e) {
    // Untagged when we looked, tagged by another interpreter since (two interpreters
    // wrapping the same new tensor at once): the rare race the check above cannot see.
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

namespace {

// The DataPtr context of a RecordTensor storage: the record view it keeps alive.
void ReleaseRecordView(void* ctx) {
  auto* view = static_cast<PyfleetRecordView*>(ctx);
  if (view->release != nullptr) view->release(view->owner);
  delete view;
}

}  // namespace

PyObject* RecordTensor(PyfleetRecordView view, size_t nbytes) {
  auto owned = std::make_unique<PyfleetRecordView>(view);  // released by ReleaseRecordView
  if (nbytes > view.size) {
    ReleaseRecordView(owned.release());
    PyErr_SetString(PyExc_RuntimeError, "pyfleet: a storage larger than its record");
    return nullptr;
  }
  try {
    void* data = const_cast<void*>(view.data);  // writable: Note [Copy-on-write mapping]
    c10::DataPtr ptr(data, owned.get(), &ReleaseRecordView, c10::Device(c10::DeviceType::CPU));
    owned.release();  // `ptr` owns the view now, and releases it even if what follows throws
    c10::Storage storage(c10::Storage::use_byte_size_t(), nbytes, std::move(ptr), /*allocator=*/nullptr,
                         /*resizable=*/false);
    auto impl = c10::make_intrusive<c10::TensorImpl>(std::move(storage), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                                     caffe2::TypeMeta::Make<uint8_t>());
    impl->set_sizes_contiguous({static_cast<int64_t>(nbytes)});
    at::Tensor t(std::move(impl));
    return WrapTensor(CurrentInterp(), t.unsafeGetTensorImpl());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
}

void DisarmTorch(PyfleetInterp* interp) {
  if (c10::impl::PyInterpreter* self = SelfPyInterpreter(interp)) self->disarm();
}

}  // namespace pyfleet::internal
