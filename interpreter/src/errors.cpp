#include "interpreter/src/errors.h"

#include <cstdlib>
#include <cstring>

#include "interpreter/importer/py_ref.h"

namespace pyfleet::internal {
namespace {

// str(obj) as UTF-8, or a placeholder if that itself fails. Requires the GIL.
std::string SafeStr(PyObject* obj) {
  if (obj == nullptr) return {};
  PyRef s = PyRef::steal(PyObject_Str(obj));
  if (!s) {
    PyErr_Clear();
    return "<exception str() failed>";
  }
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(s.get(), &size);
  if (data == nullptr) {
    PyErr_Clear();
    return "<exception str() is not UTF-8>";
  }
  return std::string(data, size);
}

// "module.QualName" of an exception type; builtins keep their "builtins." prefix so
// the host can tell them apart from same-named package exceptions.
std::string QualifiedTypeName(PyObject* type) {
  PyRef module = PyRef::steal(PyObject_GetAttrString(type, "__module__"));
  PyRef qualname = PyRef::steal(PyObject_GetAttrString(type, "__qualname__"));
  PyErr_Clear();
  std::string name = qualname ? SafeStr(qualname.get()) : std::string(((PyTypeObject*)type)->tp_name);
  return module ? SafeStr(module.get()) + "." + name : name;
}

std::string FormatTraceback(PyObject* type, PyObject* value, PyObject* tb) {
  PyRef traceback = PyRef::steal(PyImport_ImportModule("traceback"));
  if (!traceback) {
    PyErr_Clear();
    return {};
  }
  PyRef lines = PyRef::steal(PyObject_CallMethod(traceback.get(), "format_exception", "OOO", type,
                                                 value ? value : Py_None, tb ? tb : Py_None));
  if (!lines) {
    PyErr_Clear();
    return {};
  }
  PyRef empty = PyRef::steal(PyUnicode_FromString(""));
  PyRef joined = PyRef::steal(PyUnicode_Join(empty.get(), lines.get()));
  if (!joined) {
    PyErr_Clear();
    return {};
  }
  return SafeStr(joined.get());
}

// See PyfleetCode in interpreter_abi.h. Subclasses before their bases where both are
// listed (FileNotFoundError, PermissionError and TimeoutError are OSErrors; RecursionError
// is a RuntimeError, which maps to UNKNOWN).
PyfleetCode CodeForException(PyObject* type) {
  struct Mapping {
    PyObject* type;
    PyfleetCode code;
  };
  const Mapping mappings[] = {
      {PyExc_ImportError, PYFLEET_NOT_FOUND},  // ModuleNotFoundError too
      {PyExc_AttributeError, PYFLEET_NOT_FOUND},
      {PyExc_KeyError, PYFLEET_NOT_FOUND},
      {PyExc_FileNotFoundError, PYFLEET_NOT_FOUND},
      {PyExc_PermissionError, PYFLEET_PERMISSION_DENIED},
      {PyExc_TimeoutError, PYFLEET_DEADLINE_EXCEEDED},
      {PyExc_MemoryError, PYFLEET_RESOURCE_EXHAUSTED},
      {PyExc_RecursionError, PYFLEET_RESOURCE_EXHAUSTED},
      {PyExc_KeyboardInterrupt, PYFLEET_CANCELLED},
      {PyExc_IndexError, PYFLEET_OUT_OF_RANGE},
      {PyExc_TypeError, PYFLEET_INVALID_ARGUMENT},
      {PyExc_ValueError, PYFLEET_INVALID_ARGUMENT},
      {PyExc_NotImplementedError, PYFLEET_UNIMPLEMENTED},
  };
  for (const Mapping& m : mappings) {
    if (PyErr_GivenExceptionMatches(type, m.type)) return m.code;
  }
  return PYFLEET_UNKNOWN;
}

}  // namespace

PyfleetStatus* StatusFromPythonError() {
  PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
  PyErr_Fetch(&type, &value, &tb);
  if (type == nullptr) {
    return NewPyfleetStatus(PYFLEET_INTERNAL, "an operation failed without setting a Python exception");
  }
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb != nullptr && value != nullptr) PyException_SetTraceback(value, tb);
  PyRef type_ref = PyRef::steal(type), value_ref = PyRef::steal(value), tb_ref = PyRef::steal(tb);
  // Believe the instance, as Python's own traceback printing does: normalization may
  // leave a type whose constructor returned an instance of another class (Note
  // [Deadline interrupts] in gil.h relies on this).
  if (value != nullptr && PyExceptionInstance_Check(value)) type = PyExceptionInstance_Class(value);
  std::string type_name = QualifiedTypeName(type);
  std::string message = SafeStr(value);
  std::string formatted = FormatTraceback(type, value, tb);
  PyErr_Clear();
  return NewPyfleetStatus(CodeForException(type), message, type_name, formatted);
}

PyfleetStatus* FinalizedStatus(const PyfleetInterp* interp) {
  if (!interp->start_failure.empty()) {
    return NewPyfleetStatus(PYFLEET_FAILED_PRECONDITION, "interpreter " + std::to_string(interp->index) +
                                                             " failed to start: " + interp->start_failure);
  }
  return NewPyfleetStatus(PYFLEET_FAILED_PRECONDITION,
                          "interpreter " + std::to_string(interp->index) + " has been finalized");
}

}  // namespace pyfleet::internal
