// File: lifecycle.cpp
//
// Starting and finalizing the CPython of this library copy (the ABI's create and
// finalize entries). See Note [One interpreter per library copy] in state.h.
#include <Python.h>
#include <dlfcn.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "interpreter/src/arena_allocator.h"
#include "interpreter/src/errors.h"
#include "interpreter/src/gil.h"
#include "interpreter/src/lifecycle.h"
#include "interpreter/importer/package_importer.h"
#include "interpreter/importer/py_ref.h"
#include "interpreter/src/state.h"
#include "interpreter/src/tensor_bridge.h"

extern "C" const struct _frozen pyfleet_frozen_stubs[];  // stubs/freeze.py

namespace pyfleet::internal {
namespace {

PyfleetInterp* g_interp = nullptr;  // per library copy; see the Note in state.h

std::wstring Widen(const char* s) {
  std::wstring out;
  wchar_t* w = Py_DecodeLocale(s, nullptr);
  if (w != nullptr) {
    out = w;
    PyMem_RawFree(w);
  }
  return out;
}

PyfleetStatus* FromPyStatus(PyStatus status, const char* what) {
  std::string message = std::string("CPython initialization failed in ") + what;
  if (status.func != nullptr) message += std::string(" (") + status.func + ")";
  if (status.err_msg != nullptr) message += std::string(": ") + status.err_msg;
  return NewPyfleetStatus(PYFLEET_INTERNAL, message);
}

// Note [CPython's malloc allocator for sanitizer runs]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// pymalloc carves small Python objects out of 1 MiB arenas: AddressSanitizer sees one
// arena-sized block, so an overflow from one object into the next, or a use of a freed
// object, goes unnoticed. python3 is run with PYTHONMALLOC=malloc for that, but an
// interpreter's isolated PyPreConfig ignores the environment (use_environment=0). So
// the host asks for it (PyfleetInterpConfig.python_allocator) or, for whole test runs
// (scripts/test-sanitizers), the environment variable PYFLEET_PYTHON_MALLOC=malloc,
// which is read for this one purpose; CPython is then pre-initialized with
// PYMEM_ALLOCATOR_MALLOC (every object its own malloc() block) and the huge-page
// arenas are not installed (nothing would use them). Tested in
// tests/faults/python_allocator_test.cpp.

// Whether the config (or, for PYFLEET_PYTHON_ALLOCATOR_DEFAULT, $PYFLEET_PYTHON_MALLOC)
// asks for CPython's malloc allocator; INVALID_ARGUMENT for a value it does not know.
PyfleetStatus* UsePythonMalloc(const PyfleetInterpConfig* config, bool* python_malloc) {
  int32_t allocator = PYFLEET_PYTHON_ALLOCATOR_DEFAULT;
  if (config->struct_size >= offsetof(PyfleetInterpConfig, python_allocator) + sizeof(config->python_allocator)) {
    allocator = config->python_allocator;
  }
  switch (allocator) {
    case PYFLEET_PYTHON_ALLOCATOR_MALLOC:
      *python_malloc = true;
      return nullptr;
    case PYFLEET_PYTHON_ALLOCATOR_DEFAULT:
      break;
    default:
      return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT,
                              "create: python_allocator " + std::to_string(allocator) + " is not a PyfleetPythonAllocator");
  }
  const char* env = std::getenv("PYFLEET_PYTHON_MALLOC");
  const std::string value = env != nullptr ? env : "";
  if (value.empty() || value == "pymalloc") {
    *python_malloc = false;
  } else if (value == "malloc") {
    *python_malloc = true;
  } else {
    return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT,
                            "create: PYFLEET_PYTHON_MALLOC=" + value + " (expected malloc, pymalloc or empty)");
  }
  return nullptr;
}

// sys.executable is "torch_deploy": torch 1.13's sign of a shared process (torch 2.x
// reads another, set by the bootstrap): Note [Telling torch it shares the process] in
// stubs/_pyfleet_bootstrap.py.
PyfleetStatus* InitializePython(const PyfleetInterpConfig* config, bool python_malloc) {
  PyPreConfig pre;
  PyPreConfig_InitIsolatedConfig(&pre);  // what Py_InitializeFromConfig would pre-initialize with
  if (python_malloc) {
    pre.allocator = PYMEM_ALLOCATOR_MALLOC;  // Note [CPython's malloc allocator for sanitizer runs]
  } else {
    InstallHugePageArenas();  // Note [Huge-page arenas for pymalloc]
  }
  PyStatus status = Py_PreInitialize(&pre);
  if (PyStatus_Exception(status)) return FromPyStatus(status, "Py_PreInitialize");
  PyConfig py;
  PyConfig_InitIsolatedConfig(&py);
  std::unique_ptr<PyConfig, void (*)(PyConfig*)> cleanup(&py, PyConfig_Clear);
  py.install_signal_handlers = 0;  // the host owns signals
  py.site_import = 0;              // sys.path is exactly what the host configured
  py.write_bytecode = 0;
  py.parse_argv = 0;
  py.user_site_directory = 0;
  status = PyConfig_SetString(&py, &py.home, L"/usr");
  if (PyStatus_Exception(status)) return FromPyStatus(status, "PyConfig home");
  status = PyConfig_SetString(&py, &py.program_name, L"python3");
  if (PyStatus_Exception(status)) return FromPyStatus(status, "PyConfig program_name");
  status = PyConfig_SetString(&py, &py.executable, L"torch_deploy");
  if (PyStatus_Exception(status)) return FromPyStatus(status, "PyConfig executable");
  py.module_search_paths_set = 1;
  for (size_t i = 0; i < config->sys_path_len; ++i) {
    std::wstring entry = Widen(config->sys_path[i]);
    status = PyWideStringList_Append(&py.module_search_paths, entry.c_str());
    if (PyStatus_Exception(status)) return FromPyStatus(status, "PyConfig module_search_paths");
  }
  status = Py_InitializeFromConfig(&py);
  if (PyStatus_Exception(status)) return FromPyStatus(status, "Py_InitializeFromConfig");
  return nullptr;
}

// Runs stubs/_pyfleet_bootstrap.py's install(). Requires the GIL.
PyfleetStatus* Bootstrap(const PyfleetInterpConfig* config, const std::string& library_path) {
  PyRef modules = PyRef::steal(PyDict_New());
  if (!modules) return StatusFromPythonError();
  for (size_t i = 0; i < config->modules_len; ++i) {
    const PyfleetModuleSource& m = config->modules[i];
    if (m.name == nullptr || m.source == nullptr) {
      return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "module source " + std::to_string(i) + " has no name or source");
    }
    PyRef entry = PyRef::steal(Py_BuildValue("(sO)", m.source, m.is_package ? Py_True : Py_False));
    if (!entry || PyDict_SetItemString(modules.get(), m.name, entry.get()) < 0) {
      return StatusFromPythonError();
    }
  }
  PyRef bootstrap = PyRef::steal(PyImport_ImportModule("_pyfleet_bootstrap"));
  if (!bootstrap) return StatusFromPythonError();
  PyRef result = PyRef::steal(
      PyObject_CallMethod(bootstrap.get(), "install", "Os", modules.get(), library_path.c_str()));
  if (!result) return StatusFromPythonError();
  return nullptr;
}

std::string OwnLibraryPath() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&OwnLibraryPath), &info) != 0 && info.dli_fname != nullptr) {
    return info.dli_fname;
  }
  return {};
}

}  // namespace

PyfleetInterp* CurrentInterp() { return g_interp; }
void SetCurrentInterp(PyfleetInterp* interp) { g_interp = interp; }

namespace {

// Marks the interpreter of this copy as one that failed to start, for good: a later
// create is FAILED_PRECONDITION naming `failure`, and every entry refuses it. Keeps the
// PyfleetInterp (g_interp points to it; see the Note on PyfleetInterp in state.h).
void MarkStartFailed(PyfleetInterp* interp, const PyfleetStatus* failure) {
  interp->start_failure = failure != nullptr && failure->message != nullptr ? failure->message : "out of memory";
  interp->finalized.store(true, std::memory_order_seq_cst);
}

}  // namespace

// Note [A failed create keeps its PyfleetInterp]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// g_interp must be set before CPython starts (extension loads during start-up use it),
// so once it is set, a failure cannot simply drop the PyfleetInterp: g_interp would
// dangle, and the next create on this copy (or an extension load) would read freed
// memory. The PyfleetInterp is kept instead, marked finalized with the reason; a CPython
// that had already started is finalized again right away (it has run nothing but the
// bootstrap), so the copy holds no Python state. The copy cannot be used again: CPython
// does not support a second Py_InitializeFromConfig in one process image.
PyfleetStatus* CreateInterpreter(const PyfleetInterpConfig* config, PyfleetInterp** out) noexcept {
  try {
    if (config == nullptr || out == nullptr) {
      return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "create: config and out must not be NULL");
    }
    if (config->struct_size < PYFLEET_INTERP_CONFIG_MIN_SIZE) {
      return NewPyfleetStatus(PYFLEET_FAILED_PRECONDITION,
                        "create: PyfleetInterpConfig of " + std::to_string(config->struct_size) +
                            " bytes, this library needs at least " + std::to_string(PYFLEET_INTERP_CONFIG_MIN_SIZE));
    }
    if (config->extension_loader.load == nullptr) {
      return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "create: an extension loader is required");
    }
    bool python_malloc = false;
    if (PyfleetStatus* s = UsePythonMalloc(config, &python_malloc)) return s;
    if (g_interp != nullptr) {
      if (!g_interp->start_failure.empty()) {
        return NewPyfleetStatus(PYFLEET_FAILED_PRECONDITION,
                                "create: this library copy failed to start interpreter " +
                                    std::to_string(g_interp->index) + " (" + g_interp->start_failure +
                                    "); load another copy");
      }
      return NewPyfleetStatus(PYFLEET_FAILED_PRECONDITION,
                        "create: this library copy already hosts interpreter " +
                            std::to_string(g_interp->index) + "; load another copy");
    }
    auto interp = std::make_unique<PyfleetInterp>();
    interp->index = config->index;
    interp->extension_loader = config->extension_loader;
    interp->library_path = OwnLibraryPath();
    // From here on the PyfleetInterp is never freed: see Note [A failed create keeps its
    // PyfleetInterp].
    g_interp = interp.release();  // extension loads during start-up need it

    // Note [Storages that outlive their interpreter] in interpreter/importer/package_importer.h.
    SetRecordTensorFactory(&RecordTensor);
    PyImport_FrozenModules = pyfleet_frozen_stubs;
    if (PyImport_AppendInittab("pyfleet", PyInit_pyfleet) < 0) {
      PyfleetStatus* s = NewPyfleetStatus(PYFLEET_INTERNAL, "create: PyImport_AppendInittab(pyfleet) failed");
      MarkStartFailed(g_interp, s);
      return s;
    }
    if (PyfleetStatus* s = InitializePython(config, python_malloc)) {
      MarkStartFailed(g_interp, s);
      return s;
    }
    g_interp->interp = PyInterpreterState_Get();
    if (PyfleetStatus* s = Bootstrap(config, g_interp->library_path)) {
      MarkStartFailed(g_interp, s);
      Py_FinalizeEx();  // on this thread, which still holds the GIL: nothing else ran
      ForgetThreadStateAfterFinalize();
      return s;
    }
    AdoptThreadState(PyEval_SaveThread());  // see Note [Persistent thread states]
    *out = g_interp;
    return nullptr;
  } catch (const std::bad_alloc&) {
    return NewPyfleetStatus(PYFLEET_RESOURCE_EXHAUSTED, "create: out of memory");
  } catch (const std::exception& e) {
    return NewPyfleetStatus(PYFLEET_INTERNAL, std::string("create: ") + e.what());
  }
}

PyfleetStatus* FinalizeInterpreter(PyfleetInterp* interp) noexcept {
  if (interp == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "finalize: interpreter is NULL");
  if (InCallOnThisThread()) {
    // Waiting for the calls in flight would wait for this one.
    return NewPyfleetStatus(PYFLEET_FAILED_PRECONDITION,
                            "finalize: called from inside a call into interpreter " + std::to_string(interp->index));
  }
  if (interp->finalized.exchange(true, std::memory_order_seq_cst)) {
    return NewPyfleetStatus(PYFLEET_FAILED_PRECONDITION,
                      "interpreter " + std::to_string(interp->index) + " is already finalized");
  }
  // See Note [Finalize waits for calls in flight]: no new call gets in; wait for the
  // admitted ones to give the GIL back. Finalizing is rare, so poll with a short sleep.
  for (int spins = 0; interp->calls_in_flight.load(std::memory_order_seq_cst) != 0; ++spins) {
    if (spins < 100) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(spins < 1000 ? 50 : 1000));
    }
  }
  // Tensors the host still holds may own PyObjects of this interpreter; disarm torch's
  // PyInterpreter so their later release never calls into a dead CPython.
  DisarmTorch(interp);
  int rc = FinalizeOnThisThread(interp);  // runs _pyfleet_bootstrap.prepare_finalize() first
  if (rc != 0) {
    return NewPyfleetStatus(PYFLEET_INTERNAL, "Py_FinalizeEx failed for interpreter " + std::to_string(interp->index));
  }
  return nullptr;
}

}  // namespace pyfleet::internal
