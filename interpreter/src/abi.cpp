// File: abi.cpp
//
// The entry table behind pyfleet_interpreter_abi(), the only pyfleet symbol a copy of
// this library exports (interpreter/exports.map). Each entry is admitted (or refused
// after finalize, see Note [Finalize waits for calls in flight] in errors.h), takes the
// GIL with the calling thread's persistent thread state (gil.h) and turns every failure
// into a PyfleetStatus (errors.h).
#include <Python.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "interpreter/importer/package_importer.h"
#include "interpreter/src/errors.h"
#include "interpreter/src/gil.h"
#include "interpreter/src/lifecycle.h"
#include "interpreter/importer/py_ref.h"
#include "interpreter/src/state.h"
#include "interpreter/src/values.h"

namespace pyfleet::internal {
namespace {

PyObject* AsPy(PyfleetObj* obj) { return reinterpret_cast<PyObject*>(obj); }
PyfleetObj* AsObj(PyObject* obj) { return reinterpret_cast<PyfleetObj*>(obj); }

// Returns a borrowed reference to __main__'s dict (owned by sys.modules).
PyObject* MainDict() {
  PyObject* main = PyImport_AddModule("__main__");  // borrowed
  return main != nullptr ? PyModule_GetDict(main) : nullptr;
}

PyfleetStatus* Run(PyfleetInterp* interp, const char* code, const char* filename) noexcept {
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (code == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "run: code is NULL");
    PyObject* globals = MainDict();
    if (globals == nullptr) return StatusFromPythonError();
    PyRef compiled = PyRef::steal(Py_CompileString(code, filename ? filename : "<pyfleet>", Py_file_input));
    if (!compiled) return StatusFromPythonError();
    PyRef result = PyRef::steal(PyEval_EvalCode(compiled.get(), globals, globals));
    if (!result) return StatusFromPythonError();
    return nullptr;
  });
}

PyfleetStatus* Eval(PyfleetInterp* interp, const char* expression, PyfleetObj** out) noexcept {
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (expression == nullptr || out == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "eval: NULL argument");
    PyObject* globals = MainDict();
    if (globals == nullptr) return StatusFromPythonError();
    PyRef compiled = PyRef::steal(Py_CompileString(expression, "<pyfleet eval>", Py_eval_input));
    if (!compiled) return StatusFromPythonError();
    PyObject* result = PyEval_EvalCode(compiled.get(), globals, globals);
    if (result == nullptr) return StatusFromPythonError();
    *out = AsObj(result);
    return nullptr;
  });
}

PyfleetStatus* ImportModule(PyfleetInterp* interp, const char* name, PyfleetObj** out) noexcept {
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (name == nullptr || out == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "import_module: NULL argument");
    PyObject* module = PyImport_ImportModule(name);
    if (module == nullptr) return StatusFromPythonError();
    *out = AsObj(module);
    return nullptr;
  });
}

PyfleetStatus* GetAttr(PyfleetInterp* interp, PyfleetObj* obj, const char* name, PyfleetObj** out) noexcept {
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (name == nullptr || out == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "get_attr: NULL argument");
    PyObject* target = obj != nullptr ? AsPy(obj) : PyImport_AddModule("__main__");  // borrowed
    if (target == nullptr) return StatusFromPythonError();
    PyObject* result = PyObject_GetAttrString(target, name);
    if (result == nullptr) return StatusFromPythonError();
    *out = AsObj(result);
    return nullptr;
  });
}

PyfleetStatus* GetItem(PyfleetInterp* interp, PyfleetObj* obj, const PyfleetValue* key, PyfleetObj** out) noexcept {
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (obj == nullptr || key == nullptr || out == nullptr) {
      return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "get_item: NULL argument");
    }
    PyRef py_key = PyRef::steal(ValueToPython(interp, *key));
    if (!py_key) return StatusFromPythonError();
    PyObject* result = PyObject_GetItem(AsPy(obj), py_key.get());
    if (result == nullptr) return StatusFromPythonError();
    *out = AsObj(result);
    return nullptr;
  });
}

// Builds fn's positional tuple and keyword dict (NULL when there are no keywords) from
// borrowed values. Requires the GIL.
PyfleetStatus* BuildCallArguments(PyfleetInterp* interp, const PyfleetValue* args, size_t nargs,
                                  const PyfleetKwarg* kwargs, size_t nkwargs, PyRef* tuple, PyRef* dict) {
  *tuple = PyRef::steal(PyTuple_New(static_cast<Py_ssize_t>(nargs)));
  if (!*tuple) return StatusFromPythonError();
  for (size_t i = 0; i < nargs; ++i) {
    PyObject* item = ValueToPython(interp, args[i]);
    if (item == nullptr) return StatusFromPythonError();
    PyTuple_SET_ITEM(tuple->get(), i, item);  // steals item
  }
  if (nkwargs == 0) return nullptr;
  *dict = PyRef::steal(PyDict_New());
  if (!*dict) return StatusFromPythonError();
  for (size_t i = 0; i < nkwargs; ++i) {
    if (kwargs[i].name == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "call: keyword with no name");
    PyRef value = PyRef::steal(ValueToPython(interp, kwargs[i].value));
    if (!value || PyDict_SetItemString(dict->get(), kwargs[i].name, value.get()) < 0) {
      return StatusFromPythonError();
    }
  }
  return nullptr;
}

bool BadCallArguments(PyfleetObj* fn, const PyfleetValue* args, size_t nargs, const PyfleetKwarg* kwargs,
                      size_t nkwargs) {
  return fn == nullptr || (nargs > 0 && args == nullptr) || (nkwargs > 0 && kwargs == nullptr);
}

PyfleetStatus* Call(PyfleetInterp* interp, PyfleetObj* fn, const PyfleetValue* args, size_t nargs,
                    const PyfleetKwarg* kwargs, size_t nkwargs, PyfleetObj** out) noexcept {
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (out == nullptr || BadCallArguments(fn, args, nargs, kwargs, nkwargs)) {
      return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "call: NULL argument");
    }
    PyRef tuple, dict;
    if (PyfleetStatus* s = BuildCallArguments(interp, args, nargs, kwargs, nkwargs, &tuple, &dict)) return s;
    PyObject* result = PyObject_Call(AsPy(fn), tuple.get(), dict.get());
    if (result == nullptr) return StatusFromPythonError();
    *out = AsObj(result);
    return nullptr;
  });
}

PyfleetStatus* CallValue(PyfleetInterp* interp, PyfleetObj* fn, const PyfleetValue* args, size_t nargs,
                         const PyfleetKwarg* kwargs, size_t nkwargs, PyfleetValue* out) noexcept {
  if (out != nullptr) *out = PyfleetValue{};
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (out == nullptr || BadCallArguments(fn, args, nargs, kwargs, nkwargs)) {
      return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "call_value: NULL argument");
    }
    PyRef tuple, dict;
    if (PyfleetStatus* s = BuildCallArguments(interp, args, nargs, kwargs, nkwargs, &tuple, &dict)) return s;
    PyRef result = PyRef::steal(PyObject_Call(AsPy(fn), tuple.get(), dict.get()));
    if (!result) return StatusFromPythonError();
    return PythonToValue(interp, result.get(), "result", out);  // the result is dropped either way
  });
}

PyfleetStatus* HasAttr(PyfleetInterp* interp, PyfleetObj* obj, const char* name, int32_t* out) noexcept {
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (name == nullptr || out == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "has_attr: NULL argument");
    PyObject* target = obj != nullptr ? AsPy(obj) : PyImport_AddModule("__main__");  // borrowed
    if (target == nullptr) return StatusFromPythonError();
    PyRef value = PyRef::steal(PyObject_GetAttrString(target, name));
    if (!value) {
      if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return StatusFromPythonError();
      PyErr_Clear();  // hasattr(): only AttributeError means "no"
    }
    *out = value ? 1 : 0;
    return nullptr;
  });
}

PyfleetStatus* ToValue(PyfleetInterp* interp, PyfleetObj* obj, PyfleetValue* out) noexcept {
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (obj == nullptr || out == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "to_value: NULL argument");
    return PythonToValue(interp, AsPy(obj), "value", out);
  });
}

PyfleetStatus* FromValue(PyfleetInterp* interp, const PyfleetValue* value, PyfleetObj** out) noexcept {
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (value == nullptr || out == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "from_value: NULL argument");
    PyObject* result = ValueToPython(interp, *value);
    if (result == nullptr) return StatusFromPythonError();
    *out = AsObj(result);
    return nullptr;
  });
}

void ValueClear(PyfleetInterp* interp, PyfleetValue* value) noexcept {
  if (value == nullptr) return;
  if (!HoldsObject(*value)) {  // strings, tensors, item arrays: no Python involved
    ClearValue(value, /*python_alive=*/false);
    return;
  }
  if (interp == nullptr) {  // cannot reach Python: forget the references rather than crash
    ClearValue(value, /*python_alive=*/false);
    return;
  }
  CallAdmission admission(interp);
  if (!admission.admitted()) {
    ClearValue(value, /*python_alive=*/false);  // the objects died with their interpreter
    return;
  }
  GilScope gil(interp);
  ClearValue(value, /*python_alive=*/true);
}

PyfleetObj* ObjRetain(PyfleetInterp* interp, PyfleetObj* obj) noexcept {
  if (obj == nullptr || interp == nullptr) return obj;
  CallAdmission admission(interp);
  if (!admission.admitted()) return obj;
  GilScope gil(interp);
  Py_INCREF(AsPy(obj));
  return obj;
}

void ObjRelease(PyfleetInterp* interp, PyfleetObj* obj) noexcept {
  if (obj == nullptr || interp == nullptr) return;
  CallAdmission admission(interp);
  if (!admission.admitted()) return;
  GilScope gil(interp);
  Py_DECREF(AsPy(obj));
}

PyfleetStatus* Repr(PyfleetInterp* interp, PyfleetObj* obj, char** out) noexcept {
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (obj == nullptr || out == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "repr: NULL argument");
    PyRef text = PyRef::steal(PyObject_Repr(AsPy(obj)));
    if (!text) return StatusFromPythonError();
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(text.get(), &size);
    if (data == nullptr) return StatusFromPythonError();
    *out = static_cast<char*>(std::malloc(size + 1));
    std::memcpy(*out, data, size + 1);
    return nullptr;
  });
}

PyfleetStatus* MakePackageImporter(PyfleetInterp* interp, const PyfleetArchive* archive, PyfleetObj** out) noexcept {
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (archive == nullptr || out == nullptr) {
      return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "make_package_importer: NULL argument");
    }
    PyObject* importer = PyfleetPackageImporter_FromArchive(archive);
    if (importer == nullptr) return StatusFromPythonError();
    *out = AsObj(importer);
    return nullptr;
  });
}

void DetachThreadEntry(PyfleetInterp* interp) noexcept {
  if (interp == nullptr) return;
  CallAdmission admission(interp);
  if (admission.admitted()) DetachThread(interp);
}

PyfleetStatus* Finalize(PyfleetInterp* interp) noexcept { return FinalizeInterpreter(interp); }

void StatusFree(PyfleetStatus* status) noexcept { FreePyfleetStatus(status); }

// See Note [Deadline interrupts] in gil.h.
PyfleetStatus* Interrupt(PyfleetInterp* interp, uint64_t thread_id, int32_t* found) noexcept {
  if (found != nullptr) *found = 0;
  return GuardedEntry(interp, [&]() -> PyfleetStatus* {
    if (found == nullptr) return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "interrupt: found is NULL");
    PyRef bootstrap = PyRef::steal(PyImport_ImportModule("_pyfleet_bootstrap"));
    if (!bootstrap) return StatusFromPythonError();
    PyRef exc_type = PyRef::steal(PyObject_GetAttrString(bootstrap.get(), "_DeadlineExceeded"));
    if (!exc_type) return StatusFromPythonError();
    *found = InterruptThread(interp, thread_id, exc_type.get());
    return nullptr;
  });
}

void ClearInterrupt(PyfleetInterp* interp, uint64_t thread_id) noexcept {
  if (interp == nullptr) return;
  CallAdmission admission(interp);
  if (!admission.admitted()) return;
  GilScope gil(interp);
  ClearThreadInterrupt(interp, thread_id);
}

const PyfleetInterpreterAbi kAbi = {
    PYFLEET_INTERPRETER_ABI_VERSION,
    sizeof(PyfleetInterpreterAbi),
    StatusFree,
    CreateInterpreter,
    Run,
    Eval,
    ImportModule,
    GetAttr,
    GetItem,
    Call,
    ToValue,
    FromValue,
    ValueClear,
    ObjRetain,
    ObjRelease,
    Repr,
    MakePackageImporter,
    DetachThreadEntry,
    Finalize,
    // Added in version 2.
    CallValue,
    HasAttr,
    Interrupt,
    ClearInterrupt,
};

}  // namespace
}  // namespace pyfleet::internal

extern "C" __attribute__((visibility("default"))) const PyfleetInterpreterAbi* pyfleet_interpreter_abi(void) noexcept {
  return &pyfleet::internal::kAbi;
}
