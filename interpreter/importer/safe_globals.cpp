// File: safe_globals.cpp
//
// The allowlist of load_pickle(..., safe=True): which globals (module.name) a pickle may
// reference. The unpickler's find_class asks GlobalAllowed() before it imports anything,
// so a refused global's module is never imported and its code never runs.
//
//   GlobalAllowlist allow;
//   if (ParseAllowedGlobals(user_list, &allow) < 0) return nullptr;   // "pkg.models.Net",
//   int ok = GlobalAllowed(st, allow, module, name);                   // "pkg.layers.*",
//   if (ok == 0) RaiseGlobalDenied(...);                                // "torch.nn.**"
//
// Note [Safe unpickling]
// ~~~~~~~~~~~~~~~~~~~~~~
// Always allowed: what torch.load(weights_only=True) allows in torch 1.13.1 (read from
// torch._weights_only_unpickler._get_allowed_globals(), so it is torch's own list:
// collections.OrderedDict, torch.nn.parameter.Parameter, torch.Size, torch.Tensor, the
// tensor and storage classes, torch._utils._rebuild_tensor(_v2), _rebuild_parameter,
// _rebuild_sparse(_csr)_tensor, _rebuild_meta_tensor_no_storage,
// torch.serialization._get_layout, ten dtypes) plus every torch dtype, plus builtins.set
// and builtins.frozenset: enough for a state_dict, tensors, and containers of them.
// The two builtins are data, not code: they are how pickle protocols below 4 (the
// exporter's is 3) spell a set or a frozenset (REDUCE of builtins.set on a list), where
// protocol 4 has opcodes (EMPTY_SET, ADDITEMS, FROZENSET) that torch's weights-only
// unpickler reads as data; every nn.Module pickles one (_non_persistent_buffers_set), so
// without them no module could load with only its classes listed. They are the only
// builtins allowed (never getattr, eval, exec, __import__, ...). Everything else must be listed in
// allowed_globals: "module.name" (one global; a nested class is "module.Outer.Inner"),
// "module.*" (every global of that module) or "package.**" (of it and every submodule).
// The package's own modules are NOT allowed by default: a package class is code the
// pickle runs (its __reduce__, __setstate__, __init__ of its base classes).
// What this gates is the pickle's globals (GLOBAL, STACK_GLOBAL, INST, OBJ and the
// copyreg extension codes all go through find_class), like the "restricting globals"
// recipe of the pickle docs; unlike torch's weights-only unpickler it does not also
// restrict BUILD or APPEND: an allowed class's own __setstate__ / __reduce__ logic runs.
// In safe mode a pickle the C unpickler rejects is not read again by torch's Python
// unpickler (which would not apply the allowlist): its error is raised as is.
#include <string>

#include "absl/strings/string_view.h"
#include "interpreter/importer/importer_state.h"
#include "interpreter/importer/py_ref.h"

namespace pyfleet::internal {
namespace {

// Adds "torch.<name>" for every torch.dtype attribute of module torch to `set`.
int AddTorchDtypes(PyObject* set) {
  PyRef torch = PyRef::steal(PyImport_ImportModule("torch"));
  if (!torch) return -1;
  PyRef dtype_type = PyRef::steal(PyObject_GetAttrString(torch.get(), "dtype"));
  if (!dtype_type) return -1;
  PyObject* ns = PyModule_GetDict(torch.get());  // borrowed from torch
  if (ns == nullptr) return -1;
  PyObject *key, *value;  // borrowed from ns
  Py_ssize_t pos = 0;
  while (PyDict_Next(ns, &pos, &key, &value)) {
    int is_dtype = PyObject_IsInstance(value, dtype_type.get());
    if (is_dtype < 0) return -1;
    if (!is_dtype || !PyUnicode_Check(key)) continue;
    PyRef name = PyRef::steal(PyUnicode_FromFormat("torch.%U", key));
    if (!name || PySet_Add(set, name.get()) < 0) return -1;
  }
  return 0;
}

// st->safe_globals, built on first use. Borrowed (owned by the state), or NULL.
PyObject* SafeGlobals(ImporterState* st) {
  if (st->safe_globals != nullptr) return st->safe_globals;
  PyRef wo = PyRef::steal(PyImport_ImportModule("torch._weights_only_unpickler"));
  if (!wo) return nullptr;
  PyRef allowed = PyRef::steal(PyObject_CallMethod(wo.get(), "_get_allowed_globals", nullptr));
  if (!allowed) return nullptr;
  PyRef set = PyRef::steal(PySet_New(allowed.get()));  // the dict's keys
  if (!set || AddTorchDtypes(set.get()) < 0) return nullptr;
  for (const char* data_builtin : {"builtins.set", "builtins.frozenset"}) {  // see the Note
    PyRef name = PyRef::steal(PyUnicode_FromString(data_builtin));
    if (!name || PySet_Add(set.get(), name.get()) < 0) return nullptr;
  }
  st->safe_globals = PyFrozenSet_New(set.get());
  return st->safe_globals;
}

bool HasPrefix(absl::string_view s, absl::string_view p) { return s.size() >= p.size() && s.compare(0, p.size(), p) == 0; }

}  // namespace

PyObject* PyfleetSafeGlobals(PyObject* module, PyObject* /*unused*/) {
  auto* st = static_cast<ImporterState*>(PyModule_GetState(module));
  if (st == nullptr) return nullptr;
  PyObject* set = SafeGlobals(st);
  return set == nullptr ? nullptr : Py_NewRef(set);
}

int ParseAllowedGlobals(PyObject* iterable, GlobalAllowlist* out) {
  if (iterable == Py_None) return 0;
  if (PyUnicode_Check(iterable) || PyBytes_Check(iterable)) {
    PyErr_SetString(PyExc_TypeError, "allowed_globals must be a list of 'module.name' strings, not a str");
    return -1;
  }
  PyRef it = PyRef::steal(PyObject_GetIter(iterable));
  if (!it) return -1;
  while (PyRef item = PyRef::steal(PyIter_Next(it.get()))) {
    if (!PyUnicode_Check(item.get())) {
      PyErr_Format(PyExc_TypeError, "allowed_globals: entries must be str, not %s", Py_TYPE(item.get())->tp_name);
      return -1;
    }
    Py_ssize_t len;
    const char* s = PyUnicode_AsUTF8AndSize(item.get(), &len);
    if (s == nullptr) return -1;
    std::string entry(s, static_cast<size_t>(len));
    const size_t dot = entry.find('.');
    if (dot == 0 || dot == std::string::npos || entry.back() == '.') {
      PyErr_Format(PyExc_ValueError,
                   "allowed_globals: %R is not 'module.name', 'module.*' or 'package.**'", item.get());
      return -1;
    }
    if (entry.size() > 3 && entry.compare(entry.size() - 3, 3, ".**") == 0) {
      out->trees.push_back(entry.substr(0, entry.size() - 3));
    } else if (entry.size() > 2 && entry.compare(entry.size() - 2, 2, ".*") == 0) {
      out->modules.insert(entry.substr(0, entry.size() - 2));
    } else if (entry.find('*') != std::string::npos) {
      PyErr_Format(PyExc_ValueError, "allowed_globals: %R: '*' only as '.*' or '.**' at the end", item.get());
      return -1;
    } else {
      out->exact.insert(std::move(entry));
    }
  }
  return PyErr_Occurred() ? -1 : 0;
}

int GlobalAllowed(ImporterState* st, const GlobalAllowlist& allow, PyObject* module, PyObject* name) {
  PyRef full = PyRef::steal(PyUnicode_FromFormat("%U.%U", module, name));
  if (!full) return -1;
  PyObject* base = SafeGlobals(st);  // borrowed from st
  if (base == nullptr) return -1;
  int in_base = PySet_Contains(base, full.get());
  if (in_base != 0) return in_base;
  Py_ssize_t flen, mlen;
  const char* f = PyUnicode_AsUTF8AndSize(full.get(), &flen);
  const char* m = PyUnicode_AsUTF8AndSize(module, &mlen);
  if (f == nullptr || m == nullptr) return -1;
  const absl::string_view fv(f, static_cast<size_t>(flen)), mv(m, static_cast<size_t>(mlen));
  if (allow.exact.contains(fv) || allow.modules.contains(mv)) return 1;
  for (const std::string& tree : allow.trees) {
    if (HasPrefix(mv, tree) && (mv.size() == tree.size() || mv[tree.size()] == '.')) return 1;
  }
  return 0;
}

PyObject* RaiseGlobalDenied(ImporterState* st, PyObject* module, PyObject* name, PyObject* record) {
  PyRef full = PyRef::steal(PyUnicode_FromFormat("%U.%U", module, name));
  if (!full) return nullptr;
  PyRef msg = PyRef::steal(PyUnicode_FromFormat(
      "pyfleet: load_pickle(safe=True) of '%U': global '%U' is not allowed (allowed: torch's "
      "weights-only globals, see pyfleet.safe_globals(), and allowed_globals)",
      record, full.get()));
  if (!msg) return nullptr;
  PyRef exc = PyRef::steal(PyObject_CallOneArg(st->global_denied, msg.get()));
  if (!exc || PyObject_SetAttrString(exc.get(), "global_name", full.get()) < 0) return nullptr;
  PyErr_SetObject(st->global_denied, exc.get());
  return nullptr;
}

}  // namespace pyfleet::internal
