// File: dynload.cpp
//
// pyfleet's replacement for CPython's Python/dynload_shlib.c (which the build strips
// from libpython3.X-pic.a). CPython calls _PyImport_FindSharedFuncptr to load every
// native extension module; we ask the host for a private copy of the extension bound
// to THIS interpreter's library copy (ARCHITECTURE.md §3) and return its PyInit_*.
// Failures raise ImportError with the name and path, as dynload_shlib.c does, and never
// let a C++ exception into CPython's import machinery.
#include <Python.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "interpreter/importer/py_ref.h"
#include "pyfleet/platform.h"
#include "interpreter/src/state.h"
#include "interpreter/src/tensor_bridge.h"

using pyfleet::internal::PyRef;

extern "C" {

typedef void (*dl_funcptr)(void);

// The suffixes CPython tries for extension modules, as dynload_shlib.c defines them.
const char* _PyImport_DynLoadFiletab[] = {PYFLEET_PYTHON_EXT_SUFFIX, ".abi3.so", ".so", nullptr};

namespace {

void SetImportError(const std::string& message, const char* shortname, const char* pathname) {
  PyRef msg = PyRef::steal(PyUnicode_FromString(message.c_str()));
  PyRef name = PyRef::steal(PyUnicode_FromString(shortname));
  PyRef path = PyRef::steal(PyUnicode_DecodeFSDefault(pathname));
  if (msg && name && path) PyErr_SetImportError(msg.get(), name.get(), path.get());
}

// Remembers the first loaded library whose scope holds libtorch_python (torch._C's
// copy), so tensor_bridge.cpp can find THPVariable_Wrap in this interpreter's copy.
void NoteTorchPython(PyfleetInterp* interp, void* handle) {
  if (interp->torch_python != nullptr) return;
  if (dlsym(handle, "THPVariableClass") != nullptr) {
    interp->torch_python = handle;
  } else {
    dlerror();  // clear
  }
}

}  // namespace

// Requires the GIL (CPython's import holds it). Returns NULL with ImportError set when
// the library cannot be loaded, and NULL without an exception when it loads but has no
// PyInit_<name> (CPython then raises its usual "does not define module export
// function" error).
dl_funcptr _PyImport_FindSharedFuncptr(const char* prefix, const char* shortname,
                                       const char* pathname, FILE* fp) {
  (void)fp;
  PyfleetInterp* interp = pyfleet::internal::CurrentInterp();
  if (interp == nullptr || interp->extension_loader.load == nullptr) {
    SetImportError("pyfleet: no extension loader configured", shortname, pathname);
    return nullptr;
  }
  char* error = nullptr;
  void* handle = nullptr;
  {
    // See Note [Duplicate registration warning]: loading a libtorch_python copy warns.
    pyfleet::internal::ScopedRegistrationWarningFilter filter;
    handle = interp->extension_loader.load(interp->extension_loader.ctx, pathname, &error);
  }
  if (handle == nullptr) {
    std::string message = std::string("pyfleet: cannot load extension ") + pathname + ": " +
                          (error != nullptr ? error : "unknown error");
    std::free(error);
    SetImportError(message, shortname, pathname);
    return nullptr;
  }
  NoteTorchPython(interp, handle);
  char funcname[258];
  PyOS_snprintf(funcname, sizeof(funcname), "%.20s_%.200s", prefix, shortname);
  void* p = dlsym(handle, funcname);
  if (p == nullptr) dlerror();
  return reinterpret_cast<dl_funcptr>(p);
}

}  // extern "C"
