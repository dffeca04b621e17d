#include "interpreter/src/values.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "interpreter/src/errors.h"
#include "interpreter/src/tensor_bridge.h"

namespace pyfleet::internal {
PyObject* ValueToPython(PyfleetInterp* interp, const PyfleetValue& value) {
  switch (value.kind) {
    case PYFLEET_VALUE_NONE:
      Py_RETURN_NONE;
    case PYFLEET_VALUE_BOOL:
      return PyBool_FromLong(value.u.i != 0);
    case PYFLEET_VALUE_INT:
      return PyLong_FromLongLong(value.u.i);
    case PYFLEET_VALUE_DOUBLE:
      return PyFloat_FromDouble(value.u.d);
    case PYFLEET_VALUE_STRING:
      return PyUnicode_FromStringAndSize(value.u.str.data, value.u.str.size);
    case PYFLEET_VALUE_BYTES:
      return PyBytes_FromStringAndSize(value.u.str.data, value.u.str.size);
    case PYFLEET_VALUE_TENSOR:
      return WrapTensor(interp, value.u.tensor);
    case PYFLEET_VALUE_OBJECT: {
      if (value.u.obj == nullptr) {
        PyErr_SetString(PyExc_TypeError, "pyfleet: OBJECT value with a NULL object");
        return nullptr;
      }
      PyObject* obj = reinterpret_cast<PyObject*>(value.u.obj);
      Py_INCREF(obj);
      return obj;
    }
    default:
      PyErr_Format(PyExc_TypeError, "pyfleet: unknown value kind %d", static_cast<int>(value.kind));
      return nullptr;
  }
}

PyfleetStatus* PythonToValue(PyfleetInterp* interp, PyObject* obj, PyfleetValue* out) {
  *out = PyfleetValue{};
  out->kind = PYFLEET_VALUE_NONE;
  if (obj == Py_None) return nullptr;
  if (PyBool_Check(obj)) {
    out->kind = PYFLEET_VALUE_BOOL;
    out->u.i = obj == Py_True;
    return nullptr;
  }
  if (PyLong_Check(obj)) {
    long long v = PyLong_AsLongLong(obj);
    if (v == -1 && PyErr_Occurred()) return StatusFromPythonError();
    out->kind = PYFLEET_VALUE_INT;
    out->u.i = v;
    return nullptr;
  }
  if (PyFloat_Check(obj)) {
    out->kind = PYFLEET_VALUE_DOUBLE;
    out->u.d = PyFloat_AS_DOUBLE(obj);
    return nullptr;
  }
  if (PyUnicode_Check(obj) || PyBytes_Check(obj)) {
    const char* data = nullptr;
    Py_ssize_t size = 0;
    if (PyUnicode_Check(obj)) {
      data = PyUnicode_AsUTF8AndSize(obj, &size);
      if (data == nullptr) return StatusFromPythonError();
      out->kind = PYFLEET_VALUE_STRING;
    } else {
      PyBytes_AsStringAndSize(obj, const_cast<char**>(&data), &size);
      out->kind = PYFLEET_VALUE_BYTES;
    }
    char* copy = DupCString(std::string_view(data, size));
    if (copy == nullptr) return NewPyfleetStatus(static_cast<PyfleetCode>(8), "out of memory");
    out->u.str.data = copy;
    out->u.str.size = size;
    return nullptr;
  }
  int is_tensor = IsTensor(interp, obj);
  if (is_tensor < 0) return StatusFromPythonError();
  if (is_tensor == 1) {
    out->kind = PYFLEET_VALUE_TENSOR;
    out->u.tensor = UnpackTensor(interp, obj);
    return nullptr;
  }
  return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT,
                    std::string("cannot convert a Python object of type '") + Py_TYPE(obj)->tp_name +
                        "' to a value (supported: None, bool, int, float, str, bytes, torch.Tensor)");
}

void ClearValue(PyfleetValue* value) {
  if (value == nullptr) return;
  switch (value->kind) {
    case PYFLEET_VALUE_STRING:
    case PYFLEET_VALUE_BYTES:
      std::free(const_cast<char*>(value->u.str.data));
      break;
    case PYFLEET_VALUE_TENSOR:
      ReleaseTensor(value->u.tensor);
      break;
    case PYFLEET_VALUE_OBJECT:
      Py_XDECREF(reinterpret_cast<PyObject*>(value->u.obj));
      break;
    default:
      break;
  }
  *value = PyfleetValue{};
}

}  // namespace pyfleet::internal
