// File: arg_parse.h
//
// Binds METH_FASTCALL|METH_KEYWORDS arguments to parameters by name, with the
// TypeError texts Python gives for a method `def f(self, a, b=None, *, c=...)`.
//
//   static const char* const kNames[] = {"package", "resource", "map_location"};
//   PyObject* v[3] = {nullptr, nullptr, Py_None};          // defaults (borrowed)
//   if (BindArgs("PackageImporter.load_pickle", args, nargs, kwnames, kNames,
//                /*npos=*/3, /*nrequired=*/2, v) < 0) return nullptr;
//
// The parameter count is the length of `names`, which must equal that of `out`: both
// are arrays, checked at compile time, so no bookkeeping can index past either.
// Values in `out` are borrowed (from the call's arguments or the defaults).
#pragma once

#include <Python.h>

#include <cstddef>

namespace pyfleet::internal {

// `npos`: parameters that may be given positionally (the rest are keyword-only);
// `nrequired`: the leading parameters without default (nrequired <= npos <= N, else
// SystemError). 0, or -1 with TypeError.
template <size_t N>
int BindArgs(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
             const char* const (&names)[N], Py_ssize_t npos, Py_ssize_t nrequired, PyObject* (&out)[N]) {
  static_assert(N > 0, "BindArgs: a function without parameters needs no binding");
  constexpr Py_ssize_t nnames = static_cast<Py_ssize_t>(N);
  if (npos < 0 || npos > nnames || nrequired < 0 || nrequired > npos) {
    PyErr_Format(PyExc_SystemError, "%s(): bad parameter spec (%zd names, %zd positional, %zd required)", fname,
                 nnames, npos, nrequired);
    return -1;
  }
  if (nargs > npos) {
    if (nrequired == npos) {
      PyErr_Format(PyExc_TypeError, "%s() takes %zd positional arguments but %zd were given",
                   fname, npos + 1, nargs + 1);
    } else {
      PyErr_Format(PyExc_TypeError,
                   "%s() takes from %zd to %zd positional arguments but %zd were given", fname,
                   nrequired + 1, npos + 1, nargs + 1);
    }
    return -1;
  }
  bool given[N] = {};
  for (Py_ssize_t i = 0; i < nargs; ++i) {
    out[i] = args[i];
    given[i] = true;
  }
  Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);  // borrowed
    Py_ssize_t j = 0;
    for (; j < nnames; ++j) {
      if (PyUnicode_CompareWithASCIIString(key, names[j]) == 0) break;
    }
    if (j == nnames) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, key);
      return -1;
    }
    if (given[j]) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname, names[j]);
      return -1;
    }
    out[j] = args[nargs + k];
    given[j] = true;
  }
  for (Py_ssize_t i = 0; i < nrequired; ++i) {
    if (!given[i]) {
      PyErr_Format(PyExc_TypeError, "%s() missing 1 required positional argument: '%s'", fname,
                   names[i]);
      return -1;
    }
  }
  return 0;
}

}  // namespace pyfleet::internal
