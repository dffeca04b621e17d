// File: dunder_import.cpp
//
// The `__import__` every packaged module sees in its builtins (torch's
// PackageImporter.__import__, "copied from cpython's import code"), with its helpers
// _calc___package__ and _handle_fromlist.
//
//   patched_builtins["__import__"] = imp.__import__
//   # in packaged code: `from . import sibling` -> imp.__import__("", globals(), None, ("sibling",), 1)
#include "interpreter/importer/arg_parse.h"
#include "interpreter/importer/importer_state.h"
#include "interpreter/importer/py_ref.h"

namespace pyfleet::internal {
namespace {

using Self = PackageImporterObject;
Self* AsSelf(PyObject* o) { return reinterpret_cast<Self*>(o); }

// str.partition(".")[0]. New reference.
PyObject* FirstAtom(PyObject* name) {
  Py_ssize_t n = PyUnicode_GET_LENGTH(name);
  Py_ssize_t dot = PyUnicode_FindChar(name, '.', 0, n, 1);
  if (dot == -2) return nullptr;
  return dot < 0 ? Py_NewRef(name) : PyUnicode_Substring(name, 0, dot);
}

// _handle_fromlist(module, fromlist, recursive). New reference to module.
PyObject* HandleFromlist(Self* self, PyObject* module, PyObject* fromlist, bool recursive) {
  PyRef dunder_name = PyRef::steal(PyObject_GetAttrString(module, "__name__"));
  if (!dunder_name) return nullptr;
  PyRef module_name = PyRef::steal(Demangle(dunder_name.get()));
  if (!module_name) return nullptr;
  int has_path = PyObject_HasAttrString(module, "__path__");
  if (has_path) {
    PyRef it = PyRef::steal(PyObject_GetIter(fromlist));
    if (!it) return nullptr;
    while (PyRef x = PyRef::steal(PyIter_Next(it.get()))) {
      if (!PyUnicode_Check(x.get())) {
        PyRef type_name = PyRef::steal(PyType_GetName(Py_TYPE(x.get())));
        if (!type_name) return nullptr;
        if (recursive) {
          PyErr_Format(PyExc_TypeError, "Item in %U.__all__ must be str, not %U", module_name.get(),
                       type_name.get());
        } else {
          PyErr_Format(PyExc_TypeError, "Item in ``from list'' must be str, not %U", type_name.get());
        }
        return nullptr;
      }
      if (PyUnicode_CompareWithASCIIString(x.get(), "*") == 0) {
        if (recursive) continue;
        PyObject* all = nullptr;
        int has_all = LookupAttr(module, "__all__", &all);
        if (has_all < 0) return nullptr;
        if (has_all) {
          PyRef all_ref = PyRef::steal(all);
          PyRef r = PyRef::steal(HandleFromlist(self, module, all, true));
          if (!r) return nullptr;
        }
        continue;
      }
      PyRef attr = PyRef::steal(PyObject_GetAttr(module, x.get()));
      if (attr) continue;
      if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return nullptr;
      PyErr_Clear();
      PyRef from_name = PyRef::steal(PyUnicode_FromFormat("%U.%U", module_name.get(), x.get()));
      if (!from_name) return nullptr;
      PyRef sub = PyRef::steal(GcdImport(self, from_name.get(), nullptr, 0));
      if (sub) continue;
      if (!PyErr_ExceptionMatches(PyExc_ModuleNotFoundError)) return nullptr;
      // Backwards compatibility: ignore a fromlist entry that is not a module.
      PyObject *type, *value, *tb;
      PyErr_Fetch(&type, &value, &tb);
      PyErr_NormalizeException(&type, &value, &tb);
      PyRef exc_name = PyRef::steal(value ? PyObject_GetAttrString(value, "name") : nullptr);
      int same = exc_name ? PyObject_RichCompareBool(exc_name.get(), from_name.get(), Py_EQ) : -1;
      PyObject* entry = same == 1 ? PyDict_GetItemWithError(self->modules, from_name.get()) : nullptr;
      bool skip = same == 1 && !PyErr_Occurred() && entry != Py_None;
      if (skip) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        continue;
      }
      if (PyErr_Occurred()) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
      } else {
        PyErr_Restore(type, value, tb);
      }
      return nullptr;
    }
    if (PyErr_Occurred()) return nullptr;
  }
  return Py_NewRef(module);
}

// _calc___package__(globals). New reference.
PyObject* CalcPackage(PyObject* globals) {
  PyRef package = PyRef::steal(PyObject_CallMethod(globals, "get", "s", "__package__"));
  if (!package) return nullptr;
  PyRef spec = PyRef::steal(PyObject_CallMethod(globals, "get", "s", "__spec__"));
  if (!spec) return nullptr;
  if (package.get() != Py_None) {
    if (spec.get() != Py_None) {
      PyRef parent = PyRef::steal(PyObject_GetAttrString(spec.get(), "parent"));
      if (!parent) return nullptr;
      int ne = PyObject_RichCompareBool(package.get(), parent.get(), Py_NE);
      if (ne < 0) return nullptr;
      if (ne && PyErr_WarnFormat(PyExc_ImportWarning, 1, "__package__ != __spec__.parent (%R != %R)",
                                 package.get(), parent.get()) < 0) {
        return nullptr;
      }
    }
    return package.release();
  }
  if (spec.get() != Py_None) return PyObject_GetAttrString(spec.get(), "parent");
  if (PyErr_WarnEx(PyExc_ImportWarning,
                   "can't resolve package from __spec__ or __package__, falling back on "
                   "__name__ and __path__", 1) < 0) {
    return nullptr;
  }
  PyRef name_key = PyRef::steal(PyUnicode_FromString("__name__"));
  if (!name_key) return nullptr;
  PyRef name = PyRef::steal(PyObject_GetItem(globals, name_key.get()));
  if (!name) return nullptr;
  PyRef key = PyRef::steal(PyUnicode_FromString("__path__"));
  int has_path = PySequence_Contains(globals, key.get());
  if (has_path < 0) return nullptr;
  if (has_path) return name.release();
  PyRef parts = PyRef::steal(PyObject_CallMethod(name.get(), "rpartition", "s", "."));
  if (!parts) return nullptr;
  return PySequence_GetItem(parts.get(), 0);
}

}  // namespace

PyObject* PackageImporter___import__(PyObject* op, PyObject* const* args, Py_ssize_t nargs,
                                     PyObject* kwnames) {
  static const char* const kNames[] = {"name", "globals", "locals", "fromlist", "level"};
  PyRef empty = PyRef::steal(PyTuple_New(0));
  PyRef zero = PyRef::steal(PyLong_FromLong(0));
  PyObject* v[5] = {nullptr, Py_None, Py_None, empty.get(), zero.get()};
  if (BindArgs("PackageImporter.__import__", args, nargs, kwnames, kNames, 5, 1, v) < 0) {
    return nullptr;
  }
  Self* self = AsSelf(op);
  PyObject* name = v[0];
  long level = PyLong_AsLong(v[4]);
  if (level == -1 && PyErr_Occurred()) return nullptr;
  PyRef module;
  if (level == 0) {
    module = PyRef::steal(GcdImport(self, name, nullptr, 0));
  } else {
    PyRef globals = v[1] != Py_None ? PyRef::borrow(v[1]) : PyRef::steal(PyDict_New());
    if (!globals) return nullptr;
    PyRef package = PyRef::steal(CalcPackage(globals.get()));
    if (!package) return nullptr;
    module = PyRef::steal(GcdImport(self, name, package.get(), level));
  }
  if (!module) return nullptr;
  int has_fromlist = PyObject_IsTrue(v[3]);
  if (has_fromlist < 0) return nullptr;
  if (has_fromlist) return HandleFromlist(self, module.get(), v[3], false);
  if (level == 0) {
    PyRef first = PyRef::steal(FirstAtom(name));
    return first ? GcdImport(self, first.get(), nullptr, 0) : nullptr;
  }
  if (PyUnicode_GET_LENGTH(name) == 0) return module.release();
  PyRef first = PyRef::steal(FirstAtom(name));
  if (!first) return nullptr;
  Py_ssize_t cut_off = PyUnicode_GET_LENGTH(name) - PyUnicode_GET_LENGTH(first.get());
  PyRef dunder = PyRef::steal(PyObject_GetAttrString(module.get(), "__name__"));
  if (!dunder) return nullptr;
  PyRef module_name = PyRef::steal(Demangle(dunder.get()));
  if (!module_name) return nullptr;
  Py_ssize_t keep = PyUnicode_GET_LENGTH(module_name.get()) - cut_off;
  PyRef key = PyRef::steal(PySequence_GetSlice(module_name.get(), 0, keep));
  if (!key) return nullptr;
  PyObject* result = PyObject_GetItem(self->modules, key.get());
  return result;
}

}  // namespace pyfleet::internal
