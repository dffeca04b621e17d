// File: values.cpp — see values.h.
#include "interpreter/src/values.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "interpreter/importer/py_ref.h"
#include "interpreter/src/errors.h"
#include "interpreter/src/tensor_bridge.h"

namespace pyfleet::internal {
namespace {

constexpr char kSupported[] =
    "(supported: None, bool, int, float, str, bytes, torch.Tensor, list, tuple, dict)";

// Where the object being converted sits, as steps from the root. Formatted only when a
// conversion fails, so converting costs a push and a pop per nested item.
class ValuePath {
 public:
  explicit ValuePath(const char* root) : root_(root != nullptr ? root : "value") {}

  void pushIndex(Py_ssize_t index) { steps_.push_back(Step{Step::kIndex, index, nullptr}); }
  // The value stored under `key` (borrowed while the step is on the path).
  void pushValueOf(PyObject* key) { steps_.push_back(Step{Step::kValueOf, 0, key}); }
  // The `ordinal`-th key itself.
  void pushKey(Py_ssize_t ordinal) { steps_.push_back(Step{Step::kKey, ordinal, nullptr}); }
  void pop() { steps_.pop_back(); }

  // "result[1]['aux']", "result.keys()[0]". Requires the GIL; never fails.
  std::string str() const {
    std::string out = root_;
    for (const Step& step : steps_) {
      if (out.size() > 240) {  // a self-containing list: 101 steps of [0]
        out += "...";
        break;
      }
      switch (step.kind) {
        case Step::kIndex:
          out += "[" + std::to_string(step.index) + "]";
          break;
        case Step::kKey:
          out += ".keys()[" + std::to_string(step.index) + "]";
          break;
        case Step::kValueOf:
          out += "[" + KeyRepr(step.key) + "]";
          break;
      }
    }
    return out;
  }

 private:
  struct Step {
    enum Kind { kIndex, kValueOf, kKey } kind;
    Py_ssize_t index;
    PyObject* key;  // borrowed
  };

  static std::string KeyRepr(PyObject* key) {
    PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
    PyErr_Fetch(&type, &value, &tb);  // repr() must not clobber a pending error
    std::string text = "?";
    PyRef r = PyRef::steal(PyObject_Repr(key));
    Py_ssize_t size = 0;
    const char* data = r ? PyUnicode_AsUTF8AndSize(r.get(), &size) : nullptr;
    if (data != nullptr) text.assign(data, size);
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    return text;
  }

  const char* root_;
  std::vector<Step> steps_;
};

PyfleetStatus* Unsupported(PyObject* obj, const ValuePath& path) {
  return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, std::string("cannot convert a Python object of type '") +
                                                        Py_TYPE(obj)->tp_name + "' at " + path.str() +
                                                        " to a value " + kSupported);
}

PyfleetStatus* IntToValue(PyObject* obj, const ValuePath& path, PyfleetValue* out) {
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
  if (overflow != 0) {
    return NewPyfleetStatus(PYFLEET_OUT_OF_RANGE,
                            "the int at " + path.str() + " does not fit in a 64-bit signed value");
  }
  if (v == -1 && PyErr_Occurred()) return StatusFromPythonError();
  out->kind = PYFLEET_VALUE_INT;
  out->u.i = v;
  return nullptr;
}

PyfleetStatus* Convert(PyfleetInterp* interp, PyObject* obj, ValuePath& path, int depth, PyfleetValue* out);

// Frees items[0, count) and the array. Requires the GIL (items may hold nothing that
// needs it, but this is only called while converting, under the GIL).
void FreeItems(PyfleetValue* items, size_t count) {
  for (size_t i = 0; i < count; ++i) ClearValue(&items[i], /*python_alive=*/true);
  std::free(items);
}

PyfleetValue* AllocItems(size_t count) {
  if (count == 0) return nullptr;
  return static_cast<PyfleetValue*>(std::calloc(count, sizeof(PyfleetValue)));  // all NONE
}

PyfleetStatus* OutOfMemory(const ValuePath& path) {
  return NewPyfleetStatus(PYFLEET_RESOURCE_EXHAUSTED, "out of memory converting " + path.str());
}

// A list or tuple (subclasses too: namedtuple, torch.Size).
PyfleetStatus* SequenceToValue(PyfleetInterp* interp, PyObject* obj, ValuePath& path, int depth,
                               PyfleetValue* out) {
  const bool is_list = PyList_Check(obj);
  const Py_ssize_t n = is_list ? PyList_GET_SIZE(obj) : PyTuple_GET_SIZE(obj);
  PyfleetValue* items = AllocItems(n);
  if (n > 0 && items == nullptr) return OutOfMemory(path);
  for (Py_ssize_t i = 0; i < n; ++i) {
    // Converting an item can run Python (__index__), which could shrink a list.
    if (is_list && i >= PyList_GET_SIZE(obj)) {
      FreeItems(items, i);
      return NewPyfleetStatus(PYFLEET_ABORTED, "the list at " + path.str() + " changed size while it was converted");
    }
    PyRef item = PyRef::borrow(is_list ? PyList_GET_ITEM(obj, i) : PyTuple_GET_ITEM(obj, i));
    path.pushIndex(i);
    PyfleetStatus* s = Convert(interp, item.get(), path, depth + 1, &items[i]);
    path.pop();
    if (s != nullptr) {
      FreeItems(items, i);
      return s;
    }
  }
  out->kind = is_list ? PYFLEET_VALUE_LIST : PYFLEET_VALUE_TUPLE;
  out->u.seq.items = items;
  out->u.seq.size = static_cast<size_t>(n);
  return nullptr;
}

// A dict (subclasses too): its own entries, in order, as key, value, key, value...
PyfleetStatus* DictToValue(PyfleetInterp* interp, PyObject* obj, ValuePath& path, int depth, PyfleetValue* out) {
  const Py_ssize_t n = PyDict_GET_SIZE(obj);
  PyfleetValue* items = AllocItems(2 * n);
  if (n > 0 && items == nullptr) return OutOfMemory(path);
  Py_ssize_t pos = 0, k = 0;
  PyObject *key = nullptr, *value = nullptr;  // borrowed from the dict
  while (PyDict_Next(obj, &pos, &key, &value)) {
    if (k >= n) break;  // grew: reported below
    PyRef held_key = PyRef::borrow(key), held_value = PyRef::borrow(value);
    path.pushKey(k);
    PyfleetStatus* s = Convert(interp, key, path, depth + 1, &items[2 * k]);
    path.pop();
    if (s == nullptr) {
      path.pushValueOf(key);
      s = Convert(interp, value, path, depth + 1, &items[2 * k + 1]);
      path.pop();
    }
    if (s != nullptr) {
      FreeItems(items, 2 * k + 2);  // the failed one is NONE
      return s;
    }
    ++k;
  }
  if (k != n || PyDict_GET_SIZE(obj) != n) {
    FreeItems(items, 2 * k);
    return NewPyfleetStatus(PYFLEET_ABORTED, "the dict at " + path.str() + " changed size while it was converted");
  }
  out->kind = PYFLEET_VALUE_DICT;
  out->u.seq.items = items;
  out->u.seq.size = static_cast<size_t>(n);
  return nullptr;
}

PyfleetStatus* Convert(PyfleetInterp* interp, PyObject* obj, ValuePath& path, int depth, PyfleetValue* out) {
  *out = PyfleetValue{};
  out->kind = PYFLEET_VALUE_NONE;
  if (depth > PYFLEET_VALUE_MAX_DEPTH) {
    return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT, "cannot convert a value nested more than " +
                                                          std::to_string(PYFLEET_VALUE_MAX_DEPTH) +
                                                          " levels deep, at " + path.str());
  }
  if (obj == Py_None) return nullptr;
  if (PyBool_Check(obj)) {
    out->kind = PYFLEET_VALUE_BOOL;
    out->u.i = obj == Py_True;
    return nullptr;
  }
  if (PyLong_Check(obj)) return IntToValue(obj, path, out);
  if (PyFloat_Check(obj)) {
    out->kind = PYFLEET_VALUE_DOUBLE;
    out->u.d = PyFloat_AS_DOUBLE(obj);
    return nullptr;
  }
  if (PyUnicode_Check(obj) || PyBytes_Check(obj)) {
    const char* data = nullptr;
    Py_ssize_t size = 0;
    int32_t kind = PYFLEET_VALUE_BYTES;
    if (PyUnicode_Check(obj)) {
      data = PyUnicode_AsUTF8AndSize(obj, &size);
      if (data == nullptr) {
        PyErr_Clear();
        return NewPyfleetStatus(PYFLEET_INVALID_ARGUMENT,
                                "the str at " + path.str() + " cannot be encoded as UTF-8 (a lone surrogate)");
      }
      kind = PYFLEET_VALUE_STRING;
    } else {
      data = PyBytes_AS_STRING(obj);
      size = PyBytes_GET_SIZE(obj);
    }
    char* copy = DupCString(std::string_view(data, size));
    if (copy == nullptr) return OutOfMemory(path);
    out->kind = kind;
    out->u.str.data = copy;
    out->u.str.size = size;
    return nullptr;
  }
  if (PyList_Check(obj) || PyTuple_Check(obj)) return SequenceToValue(interp, obj, path, depth, out);
  if (PyDict_Check(obj)) return DictToValue(interp, obj, path, depth, out);
  int is_tensor = IsTensor(interp, obj);
  if (is_tensor < 0) return StatusFromPythonError();
  if (is_tensor == 1) {
    out->kind = PYFLEET_VALUE_TENSOR;
    out->u.tensor = UnpackTensor(interp, obj);
    return nullptr;
  }
  if (PyIndex_Check(obj)) {  // numpy integers and other __index__ types (after tensors: they have one too)
    PyRef index = PyRef::steal(PyNumber_Index(obj));
    if (!index) return StatusFromPythonError();
    return IntToValue(index.get(), path, out);
  }
  return Unsupported(obj, path);
}

PyObject* ToPython(PyfleetInterp* interp, const PyfleetValue& value, int depth) {
  if (depth > PYFLEET_VALUE_MAX_DEPTH) {
    PyErr_Format(PyExc_ValueError, "pyfleet: value nested more than %d levels deep", PYFLEET_VALUE_MAX_DEPTH);
    return nullptr;
  }
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
    case PYFLEET_VALUE_LIST:
    case PYFLEET_VALUE_TUPLE:
    case PYFLEET_VALUE_DICT: {
      const size_t n = value.u.seq.size;
      if (n > 0 && value.u.seq.items == nullptr) {
        PyErr_SetString(PyExc_TypeError, "pyfleet: LIST/TUPLE/DICT value with items NULL and size > 0");
        return nullptr;
      }
      if (n > static_cast<size_t>(PY_SSIZE_T_MAX / 2)) return PyErr_NoMemory();
      const PyfleetValue* items = value.u.seq.items;
      if (value.kind == PYFLEET_VALUE_DICT) {
        PyRef dict = PyRef::steal(PyDict_New());
        if (!dict) return nullptr;
        for (size_t i = 0; i < n; ++i) {
          PyRef key = PyRef::steal(ToPython(interp, items[2 * i], depth + 1));
          if (!key) return nullptr;
          PyRef item = PyRef::steal(ToPython(interp, items[2 * i + 1], depth + 1));
          if (!item || PyDict_SetItem(dict.get(), key.get(), item.get()) < 0) return nullptr;
        }
        return dict.release();
      }
      const bool is_list = value.kind == PYFLEET_VALUE_LIST;
      PyRef seq = PyRef::steal(is_list ? PyList_New(static_cast<Py_ssize_t>(n))
                                       : PyTuple_New(static_cast<Py_ssize_t>(n)));
      if (!seq) return nullptr;
      for (size_t i = 0; i < n; ++i) {
        PyObject* item = ToPython(interp, items[i], depth + 1);
        if (item == nullptr) return nullptr;
        if (is_list) {
          PyList_SET_ITEM(seq.get(), i, item);  // steals item
        } else {
          PyTuple_SET_ITEM(seq.get(), i, item);  // steals item
        }
      }
      return seq.release();
    }
    default:
      PyErr_Format(PyExc_TypeError, "pyfleet: unknown value kind %d", static_cast<int>(value.kind));
      return nullptr;
  }
}

size_t ItemCount(const PyfleetValue& value) {
  return value.kind == PYFLEET_VALUE_DICT ? 2 * value.u.seq.size : value.u.seq.size;
}

bool IsSequenceKind(int32_t kind) {
  return kind == PYFLEET_VALUE_LIST || kind == PYFLEET_VALUE_TUPLE || kind == PYFLEET_VALUE_DICT;
}

}  // namespace

PyObject* ValueToPython(PyfleetInterp* interp, const PyfleetValue& value) { return ToPython(interp, value, 0); }

PyfleetStatus* PythonToValue(PyfleetInterp* interp, PyObject* obj, const char* root, PyfleetValue* out) {
  ValuePath path(root);
  return Convert(interp, obj, path, 0, out);
}

bool HoldsObject(const PyfleetValue& value) {
  if (value.kind == PYFLEET_VALUE_OBJECT) return value.u.obj != nullptr;
  if (!IsSequenceKind(value.kind) || value.u.seq.items == nullptr) return false;
  for (size_t i = 0, n = ItemCount(value); i < n; ++i) {
    if (HoldsObject(value.u.seq.items[i])) return true;
  }
  return false;
}

void ClearValue(PyfleetValue* value, bool python_alive) {
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
      if (python_alive) Py_XDECREF(reinterpret_cast<PyObject*>(value->u.obj));
      break;
    case PYFLEET_VALUE_LIST:
    case PYFLEET_VALUE_TUPLE:
    case PYFLEET_VALUE_DICT:
      if (value->u.seq.items != nullptr) {
        for (size_t i = 0, n = ItemCount(*value); i < n; ++i) ClearValue(&value->u.seq.items[i], python_alive);
        std::free(value->u.seq.items);
      }
      break;
    default:
      break;
  }
  *value = PyfleetValue{};
}

}  // namespace pyfleet::internal
