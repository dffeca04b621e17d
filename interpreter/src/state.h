// File: state.h
//
// The state of the one CPython this library copy hosts.
//
// Note [One interpreter per library copy]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The host dlopens a private copy of libpyfleet_interpreter.so per interpreter
// (ARCHITECTURE.md §2), so every namespace-scope variable here, CPython's own
// _PyRuntime included, exists once per interpreter. That is what makes `State` below
// safe as a per-copy singleton; it would be wrong in code linked into the host.
#pragma once

#include <Python.h>

#include <atomic>
#include <string>

#include "pyfleet/interpreter_abi.h"

// The interpreter of this library copy. Made by create() and never freed: handles the
// host still holds (and a failed create) keep pointing at it after finalize, and then
// read only `index` and the atomics. See Note [One interpreter per library copy].
struct PyfleetInterp {
  int32_t index = 0;
  PyInterpreterState* interp = nullptr;  // owned by CPython
  PyfleetExtensionLoader extension_loader{};
  std::string library_path;  // this copy, as the host dlopen'ed it
  void* torch_python = nullptr;  // a dlopen handle whose scope holds libtorch_python
  // Symbols of this interpreter's libtorch_python, resolved once (tensor_bridge.cpp);
  // read and written under the GIL. dlsym per call would take the dynamic linker's lock.
  void* thp_variable_wrap = nullptr;
  void* thp_variable_class = nullptr;  // PyObject** THPVariableClass
  void* py_interpreter = nullptr;      // c10::impl::PyInterpreter* of this copy's torch
  // See Note [Finalize waits for calls in flight] (errors.h). Both seq_cst.
  std::atomic<bool> finalized{false};
  std::atomic<int64_t> calls_in_flight{0};
  // Set when create() failed after CPython had started (that CPython is finalized
  // again); written once before `finalized` is set, then only read.
  std::string start_failure;
};

namespace pyfleet::internal {

// The interpreter of this library copy, or nullptr before create().
// See Note [One interpreter per library copy].
PyfleetInterp* CurrentInterp();
void SetCurrentInterp(PyfleetInterp* interp);

}  // namespace pyfleet::internal
