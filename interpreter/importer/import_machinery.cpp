// File: import_machinery.cpp
//
// Module loading, as torch 1.13's PackageImporter does it (itself "copied from
// cpython's import code"): import_module, _gcd_import, _find_and_load,
// _do_find_and_load, _load_module, _make_module, _install_on_parent, _resolve_name,
// mangling, _get_package, _zipfile_path and get_source. Function names follow torch's.
// The patched __import__ is in dunder_import.cpp.
//
//   PyRef mod = PyRef::steal(ImportModule(self, name));  // like imp.import_module(name)
#include <cstring>

#include "interpreter/importer/arg_parse.h"
#include "interpreter/importer/importer_state.h"
#include "interpreter/importer/py_ref.h"

namespace pyfleet::internal {
namespace {

using Self = PackageImporterObject;
Self* AsSelf(PyObject* o) { return reinterpret_cast<Self*>(o); }

// str.rpartition(".")[0] and [2] for a str.
PyObject* Head(PyObject* name) {  // new reference
  Py_ssize_t n = PyUnicode_GET_LENGTH(name);
  Py_ssize_t dot = PyUnicode_FindChar(name, '.', 0, n, -1);
  if (dot == -2) return nullptr;
  return dot < 0 ? PyUnicode_FromString("") : PyUnicode_Substring(name, 0, dot);
}
PyObject* Tail(PyObject* name) {  // new reference
  Py_ssize_t n = PyUnicode_GET_LENGTH(name);
  Py_ssize_t dot = PyUnicode_FindChar(name, '.', 0, n, -1);
  if (dot == -2) return nullptr;
  return dot < 0 ? Py_NewRef(name) : PyUnicode_Substring(name, dot + 1, n);
}

// A borrowed UTF-8 view of a str (NULL + exception for lone surrogates).
bool Utf8(PyObject* s, std::string_view* out) {
  Py_ssize_t len;
  const char* p = PyUnicode_AsUTF8AndSize(s, &len);
  if (p == nullptr) return false;
  *out = std::string_view(p, static_cast<size_t>(len));
  return true;
}

PyObject* FindAndLoad(Self* self, PyObject* name);

// _sanity_check(name, package, level). 0 or -1.
int SanityCheck(PyObject* name, PyObject* package, long level) {
  if (!PyUnicode_Check(name)) {
    PyRef type_repr = PyRef::steal(PyObject_Repr(reinterpret_cast<PyObject*>(Py_TYPE(name))));
    if (type_repr) PyErr_Format(PyExc_TypeError, "module name must be str, not %U", type_repr.get());
    return -1;
  }
  if (level < 0) {
    PyErr_SetString(PyExc_ValueError, "level must be >= 0");
    return -1;
  }
  if (level > 0) {
    if (package == nullptr || !PyUnicode_Check(package)) {
      PyErr_SetString(PyExc_TypeError, "__package__ not set to a string");
      return -1;
    }
    if (PyUnicode_GET_LENGTH(package) == 0) {
      PyErr_SetString(PyExc_ImportError, "attempted relative import with no known parent package");
      return -1;
    }
  }
  if (PyUnicode_GET_LENGTH(name) == 0 && level == 0) {
    PyErr_SetString(PyExc_ValueError, "Empty module name");
    return -1;
  }
  return 0;
}

// _resolve_name(name, package, level). New reference.
PyObject* ResolveName(PyObject* name, PyObject* package, long level) {
  PyRef sep = PyRef::steal(PyUnicode_FromString("."));
  PyRef bits = PyRef::steal(PyUnicode_RSplit(package, sep.get(), level - 1));
  if (!bits) return nullptr;
  if (PyList_GET_SIZE(bits.get()) < level) {
    PyErr_SetString(PyExc_ValueError, "attempted relative import beyond top-level package");
    return nullptr;
  }
  PyObject* base = PyList_GET_ITEM(bits.get(), 0);  // borrowed from bits
  if (PyUnicode_GET_LENGTH(name) == 0) return Py_NewRef(base);
  return PyUnicode_FromFormat("%U.%U", base, name);
}

// _install_on_parent(parent, name, module). 0 or -1.
int InstallOnParent(Self* self, PyObject* parent, PyObject* name, PyObject* module) {
  if (PyUnicode_GET_LENGTH(parent) == 0) return 0;
  PyObject* parent_module = PyDict_GetItemWithError(self->modules, parent);  // borrowed
  if (parent_module == nullptr) {
    if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, parent);
    return -1;
  }
  Py_INCREF(parent_module);
  PyRef holder = PyRef::steal(parent_module);
  PyRef loader = PyRef::steal(PyObject_GetAttrString(parent_module, "__loader__"));
  if (!loader) return -1;
  if (loader.get() != reinterpret_cast<PyObject*>(self)) return 0;
  PyRef attr = PyRef::steal(Tail(name));
  if (!attr) return -1;
  return PyObject_SetAttr(parent_module, attr.get(), module);
}

// _normalize_line_endings: \r\n and \r become \n. Steals `source`; new reference.
PyObject* NormalizeLineEndings(PyObject* source) {
  PyRef src = PyRef::steal(source);
  const char* data = PyBytes_AS_STRING(source);
  Py_ssize_t n = PyBytes_GET_SIZE(source);
  if (std::memchr(data, '\r', static_cast<size_t>(n)) == nullptr) return src.release();
  std::string out;
  out.reserve(static_cast<size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    if (data[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < n && data[i + 1] == '\n') ++i;
    } else {
      out.push_back(data[i]);
    }
  }
  return PyBytes_FromStringAndSize(out.data(), static_cast<Py_ssize_t>(out.size()));
}

// _make_module(name, filename, is_package, parent). New reference.
PyObject* MakeModule(Self* self, PyObject* name, const std::optional<std::string>& filename,
                     bool is_package, PyObject* parent) {
  ImporterState* st = StateOf(reinterpret_cast<PyObject*>(self));
  PyRef file_str;
  PyRef mangled_filename = PyRef::borrow(Py_None);
  if (filename.has_value() && !filename->empty()) {
    file_str = PyRef::steal(PyUnicode_DecodeUTF8(filename->data(),
                                                 static_cast<Py_ssize_t>(filename->size()),
                                                 "surrogateescape"));
    if (!file_str) return nullptr;
    mangled_filename = PyRef::steal(Mangle(self, file_str.get()));
    if (!mangled_filename) return nullptr;
  }
  PyRef args = PyRef::steal(PyTuple_Pack(2, name, reinterpret_cast<PyObject*>(self)));
  PyRef kwargs = PyRef::steal(Py_BuildValue("{sssO}", "origin", "<package_importer>",
                                            "is_package", is_package ? Py_True : Py_False));
  if (!args || !kwargs) return nullptr;
  PyRef spec = PyRef::steal(PyObject_Call(st->module_spec, args.get(), kwargs.get()));
  if (!spec) return nullptr;
  PyRef module = PyRef::steal(PyObject_CallOneArg(st->module_from_spec, spec.get()));
  if (!module) return nullptr;
  if (PyDict_SetItem(self->modules, name, module.get()) < 0) return nullptr;
  PyRef mangled_name = PyRef::steal(Mangle(self, name));
  if (!mangled_name || PyObject_SetAttrString(module.get(), "__name__", mangled_name.get()) < 0) {
    return nullptr;
  }
  PyObject* ns = PyModule_GetDict(module.get());  // borrowed from module
  if (ns == nullptr || PyDict_SetItemString(ns, "__spec__", spec.get()) < 0 ||
      PyDict_SetItemString(ns, "__loader__", reinterpret_cast<PyObject*>(self)) < 0 ||
      PyDict_SetItemString(ns, "__file__", mangled_filename.get()) < 0 ||
      PyDict_SetItemString(ns, "__cached__", Py_None) < 0 ||
      PyDict_SetItemString(ns, "__builtins__", self->patched_builtins) < 0 ||
      PyDict_SetItemString(ns, "__torch_package__", Py_True) < 0) {
    return nullptr;
  }
  // torch's private registry of package-imported modules (its patched inspect.getfile
  // looks classes up there); names are unique thanks to mangling.
  int present = PySequence_Contains(st->imported_modules, mangled_name.get());
  if (present < 0) return nullptr;
  if (present) {
    PyErr_SetNone(PyExc_AssertionError);
    return nullptr;
  }
  if (PyObject_SetItem(st->imported_modules, mangled_name.get(), module.get()) < 0) return nullptr;
  if (InstallOnParent(self, parent, name, module.get()) < 0) return nullptr;
  if (file_str) {
    // Pre-install the source in linecache so tracebacks, inspect, etc. work.
    PyRef cache = PyRef::steal(PyObject_GetAttrString(st->linecache, "cache"));
    if (!cache) return nullptr;
    int cached = PySequence_Contains(cache.get(), file_str.get());
    if (cached < 0) return nullptr;
    if (cached) {
      PyErr_SetNone(PyExc_AssertionError);
      return nullptr;
    }
    PyRef r = PyRef::steal(PyObject_CallMethod(st->linecache, "lazycache", "OO",
                                               mangled_filename.get(), ns));
    if (!r) return nullptr;
    PyObject* raw = ReadRecordBytes(self, *filename);
    if (raw == nullptr) return nullptr;
    PyRef source = PyRef::steal(NormalizeLineEndings(raw));
    if (!source) return nullptr;
    PyRef ckw = PyRef::steal(Py_BuildValue("{sO}", "dont_inherit", Py_True));
    PyRef cargs = PyRef::steal(Py_BuildValue("(OOs)", source.get(), mangled_filename.get(), "exec"));
    if (!ckw || !cargs) return nullptr;
    PyRef code = PyRef::steal(PyObject_Call(st->compile, cargs.get(), ckw.get()));
    if (!code) return nullptr;
    PyRef result = PyRef::steal(PyEval_EvalCode(code.get(), ns, ns));
    if (!result) return nullptr;
  }
  return module.release();
}

// importlib.import_module(name), stored in self.modules[name], if the interpreter's
// security policy allows the extern module (CheckExternAllowed). New reference.
PyObject* ImportExtern(Self* self, ImporterState* st, PyObject* name) {
  if (CheckExternAllowed(self, name) < 0) return nullptr;
  PyRef module = PyRef::steal(PyObject_CallOneArg(st->import_module, name));
  if (!module || PyDict_SetItem(self->modules, name, module.get()) < 0) return nullptr;
  return module.release();
}

// _load_module(name, parent). New reference.
PyObject* LoadModule(Self* self, PyObject* name, PyObject* parent) {
  ImporterState* st = StateOf(reinterpret_cast<PyObject*>(self));
  std::string_view full;
  if (!Utf8(name, &full)) return nullptr;
  const PathNode* cur = self->root;
  size_t start = 0;
  while (true) {
    size_t dot = full.find('.', start);
    std::string atom(full.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    auto it = cur->kind == PathNode::Kind::kPackage ? cur->children.find(atom) : cur->children.end();
    if (it == cur->children.end()) {
      int allowed = PySequence_Contains(st->implicit_allowlist, name);
      if (allowed < 0) return nullptr;
      if (allowed) return ImportExtern(self, st, name);
      PyRef msg = PyRef::steal(PyUnicode_FromFormat(
          "No module named \"%U\" in self-contained archive \"%U\" and the module is also not "
          "in the list of allowed external modules: %S",
          name, self->filename, self->extern_modules));
      if (!msg) return nullptr;
      return RaiseImportError(PyExc_ModuleNotFoundError, msg.get(), name);
    }
    cur = it->second.get();
    if (cur->kind == PathNode::Kind::kExtern) return ImportExtern(self, st, name);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return MakeModule(self, name, cur->source_file, cur->kind == PathNode::Kind::kPackage, parent);
}

// The checks _do_find_and_load makes when the parent has no __path__. Returns 1 if the
// import may go on (a C extension package that holds the submodule), -1 with an error.
int ParentWithoutPath(Self* self, PyObject* name, PyObject* parent, PyObject* parent_module) {
  ImporterState* st = StateOf(reinterpret_cast<PyObject*>(self));
  PyRef loader = PyRef::steal(PyObject_GetAttrString(parent_module, "__loader__"));
  if (!loader) return -1;
  int is_ext = PyObject_IsInstance(loader.get(), st->extension_loader);
  if (is_ext < 0) return -1;
  if (!is_ext) {
    PyRef msg = PyRef::steal(PyUnicode_FromFormat("No module named %R; %R is not a package", name, parent));
    if (msg) RaiseImportError(PyExc_ModuleNotFoundError, msg.get(), name);
    return -1;
  }
  int externed = PySequence_Contains(self->extern_modules, name);
  if (externed < 0) return -1;
  if (!externed) {
    // torch's format string has a stray '}' here, so str.format raises this.
    PyErr_SetString(PyExc_ValueError, "Single '}' encountered in format string");
    return -1;
  }
  PyRef short_name = PyRef::steal(Tail(name));
  if (!short_name) return -1;
  PyObject* ns = PyModule_Check(parent_module) ? PyModule_GetDict(parent_module) : nullptr;
  PyObject* sub = ns ? PyDict_GetItemWithError(ns, short_name.get()) : nullptr;  // borrowed
  if (sub == nullptr && PyErr_Occurred()) return -1;
  if (sub == nullptr || !PyModule_Check(sub)) {
    PyRef msg = PyRef::steal(PyUnicode_FromFormat(
        "No module named %R; %R is a c extension package which does not contain %R.", name,
        parent, name));
    if (msg) RaiseImportError(PyExc_ModuleNotFoundError, msg.get(), name);
    return -1;
  }
  return 1;
}

// _do_find_and_load(name). New reference.
PyObject* DoFindAndLoad(Self* self, PyObject* name) {
  PyRef parent = PyRef::steal(Head(name));
  if (!parent) return nullptr;
  if (PyUnicode_GET_LENGTH(parent.get()) > 0) {
    int has = PyDict_Contains(self->modules, parent.get());
    if (has < 0) return nullptr;
    if (!has) {
      PyRef p = PyRef::steal(GcdImport(self, parent.get(), nullptr, 0));
      if (!p) return nullptr;
    }
    PyObject* existing = PyDict_GetItemWithError(self->modules, name);  // borrowed
    if (existing != nullptr) return Py_NewRef(existing);  // "Crazy side-effects!"
    if (PyErr_Occurred()) return nullptr;
    PyObject* parent_module = PyDict_GetItemWithError(self->modules, parent.get());  // borrowed
    if (parent_module == nullptr) {
      if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, parent.get());
      return nullptr;
    }
    PyRef pm = PyRef::borrow(parent_module);
    PyObject* path = nullptr;
    int has_path = LookupAttr(pm.get(), "__path__", &path);
    Py_XDECREF(path);
    if (has_path < 0) return nullptr;
    if (!has_path && ParentWithoutPath(self, name, parent.get(), pm.get()) < 0) return nullptr;
  }
  PyRef module = PyRef::steal(LoadModule(self, name, parent.get()));
  if (!module || InstallOnParent(self, parent.get(), name, module.get()) < 0) return nullptr;
  return module.release();
}

// _find_and_load(name). New reference.
PyObject* FindAndLoad(Self* self, PyObject* name) {
  PyObject* module = PyDict_GetItemWithError(self->modules, name);  // borrowed
  if (module == nullptr) {
    if (PyErr_Occurred()) return nullptr;
    return DoFindAndLoad(self, name);
  }
  if (module == Py_None) {
    PyRef msg = PyRef::steal(PyUnicode_FromFormat("import of %U halted; None in sys.modules", name));
    return msg ? RaiseImportError(PyExc_ModuleNotFoundError, msg.get(), name) : nullptr;
  }
  PyRef mod = PyRef::borrow(module);
  // std's fake submodules made by hacking sys.modules (pytorch issue 57490).
  if (PyUnicode_CompareWithASCIIString(name, "os") == 0) {
    PyRef path = PyRef::steal(PyObject_GetAttrString(mod.get(), "path"));
    if (!path || PyDict_SetItemString(self->modules, "os.path", path.get()) < 0) return nullptr;
  } else if (PyUnicode_CompareWithASCIIString(name, "typing") == 0) {
    PyRef io = PyRef::steal(PyObject_GetAttrString(mod.get(), "io"));
    if (!io || PyDict_SetItemString(self->modules, "typing.io", io.get()) < 0) return nullptr;
    PyRef re = PyRef::steal(PyObject_GetAttrString(mod.get(), "re"));
    if (!re || PyDict_SetItemString(self->modules, "typing.re", re.get()) < 0) return nullptr;
  }
  return mod.release();
}

}  // namespace

// _gcd_import(name, package, level). New reference.
PyObject* GcdImport(Self* self, PyObject* name, PyObject* package, long level) {
  if (SanityCheck(name, package, level) < 0) return nullptr;
  if (level > 0) {
    PyRef resolved = PyRef::steal(ResolveName(name, package, level));
    if (!resolved) return nullptr;
    return FindAndLoad(self, resolved.get());
  }
  return FindAndLoad(self, name);
}

PyObject* Demangle(PyObject* name) {
  if (!PyUnicode_Check(name)) {
    PyErr_Format(PyExc_TypeError, "expected string or bytes-like object, got '%s'",
                 Py_TYPE(name)->tp_name);
    return nullptr;
  }
  // is_mangled: re.match(r"<torch_package_\d+>", name)
  static const char kPrefix[] = "<torch_package_";
  constexpr Py_ssize_t kLen = sizeof(kPrefix) - 1;
  Py_ssize_t n = PyUnicode_GET_LENGTH(name);
  bool mangled = false;
  PyRef prefix = PyRef::steal(PyUnicode_FromString(kPrefix));
  if (!prefix) return nullptr;
  if (n > kLen + 1 && PyUnicode_Tailmatch(name, prefix.get(), 0, kLen, -1) == 1) {
    Py_ssize_t i = kLen;
    while (i < n && Py_UNICODE_ISDIGIT(PyUnicode_READ_CHAR(name, i))) ++i;
    mangled = i > kLen && i < n && PyUnicode_READ_CHAR(name, i) == '>';
  }
  if (PyErr_Occurred()) return nullptr;
  if (!mangled) return Py_NewRef(name);
  Py_ssize_t dot = PyUnicode_FindChar(name, '.', 0, n, 1);
  if (dot == -2) return nullptr;
  return dot < 0 ? PyUnicode_FromString("") : PyUnicode_Substring(name, dot + 1, n);
}

PyObject* Mangle(Self* self, PyObject* name) {
  if (PyObject_Length(name) == 0) {
    PyErr_SetNone(PyExc_AssertionError);
    return nullptr;
  }
  if (PyErr_Occurred()) return nullptr;
  return PyUnicode_FromFormat("%U.%S", self->mangle_parent, name);
}

PyObject* ImportModule(Self* self, PyObject* name) {
  if (!PyUnicode_Check(name)) {
    PyErr_Format(PyExc_AttributeError, "'%s' object has no attribute 'startswith'",
                 Py_TYPE(name)->tp_name);
    return nullptr;
  }
  // PackageMangler.demangle: only this importer's own prefix.
  Py_ssize_t plen = PyUnicode_GET_LENGTH(self->mangle_parent);
  PyRef own = PyRef::borrow(name);
  if (PyUnicode_GET_LENGTH(name) > plen &&
      PyUnicode_Tailmatch(name, self->mangle_parent, 0, plen, -1) == 1 &&
      PyUnicode_READ_CHAR(name, plen) == '.') {
    own = PyRef::steal(PyUnicode_Substring(name, plen + 1, PyUnicode_GET_LENGTH(name)));
    if (!own) return nullptr;
  }
  return GcdImport(self, own.get(), nullptr, 0);
}

PyObject* PackageImporter_import_module(PyObject* op, PyObject* const* args, Py_ssize_t nargs,
                                        PyObject* kwnames) {
  static const char* const kNames[] = {"name", "package"};
  PyObject* v[2] = {nullptr, Py_None};
  if (BindArgs("PackageImporter.import_module", args, nargs, kwnames, kNames, 2, 1, v) < 0) {
    return nullptr;
  }
  if (AsSelf(op)->modules == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "PackageImporter.__init__() was not called");
    return nullptr;
  }
  return ImportModule(AsSelf(op), v[0]);
}

PyObject* GetPackage(Self* self, PyObject* package) {
  PyObject* spec = nullptr;
  int has_spec = LookupAttr(package, "__spec__", &spec);
  if (has_spec < 0) return nullptr;
  if (has_spec) {
    PyRef s = PyRef::steal(spec);
    PyRef locations = PyRef::steal(PyObject_GetAttrString(spec, "submodule_search_locations"));
    if (!locations) return nullptr;
    if (locations.get() == Py_None) {
      PyRef spec_name = PyRef::steal(PyObject_GetAttrString(spec, "name"));
      if (spec_name) PyErr_Format(PyExc_TypeError, "%R is not a package", spec_name.get());
      return nullptr;
    }
    return Py_NewRef(package);
  }
  PyRef module = PyRef::steal(ImportModule(self, package));
  if (!module) return nullptr;
  PyRef mspec = PyRef::steal(PyObject_GetAttrString(module.get(), "__spec__"));
  if (!mspec) return nullptr;
  PyRef locations = PyRef::steal(PyObject_GetAttrString(mspec.get(), "submodule_search_locations"));
  if (!locations) return nullptr;
  if (locations.get() == Py_None) {
    PyErr_Format(PyExc_TypeError, "%R is not a package", package);
    return nullptr;
  }
  return module.release();
}

PyObject* ZipfilePath(Self* self, PyObject* package, PyObject* resource) {
  ImporterState* st = StateOf(reinterpret_cast<PyObject*>(self));
  PyRef pkg = PyRef::steal(GetPackage(self, package));
  if (!pkg) return nullptr;
  PyRef loader = PyRef::steal(PyObject_GetAttrString(pkg.get(), "__loader__"));
  if (!loader) return nullptr;
  if (loader.get() != reinterpret_cast<PyObject*>(self)) {
    PyErr_SetNone(PyExc_AssertionError);
    return nullptr;
  }
  PyRef dunder = PyRef::steal(PyObject_GetAttrString(pkg.get(), "__name__"));
  if (!dunder) return nullptr;
  PyRef name = PyRef::steal(Demangle(dunder.get()));
  if (!name) return nullptr;
  PyRef dir = PyRef::steal(PyObject_CallMethod(name.get(), "replace", "ss", ".", "/"));
  if (!dir) return nullptr;
  if (resource == nullptr) return dir.release();
  // _normalize_path(resource): os.path.split; a non-empty head is an error.
  PyRef parts = PyRef::steal(PyObject_CallOneArg(st->path_split, resource));
  if (!parts) return nullptr;
  PyObject* head = PyTuple_GetItem(parts.get(), 0);  // borrowed from parts
  PyObject* file_name = PyTuple_GetItem(parts.get(), 1);
  if (head == nullptr || file_name == nullptr) return nullptr;
  int nonempty = PyObject_IsTrue(head);
  if (nonempty < 0) return nullptr;
  if (nonempty) {
    PyErr_Format(PyExc_ValueError, "%R must be only a file name", resource);
    return nullptr;
  }
  return PyUnicode_FromFormat("%U/%S", dir.get(), file_name);
}

PyObject* PackageImporter_get_source(PyObject* op, PyObject* module_name) {
  Self* self = AsSelf(op);
  PyRef plain = PyRef::steal(Demangle(module_name));
  if (!plain) return nullptr;
  PyRef module = PyRef::steal(ImportModule(self, plain.get()));
  if (!module) return nullptr;
  PyRef file = PyRef::steal(PyObject_GetAttrString(module.get(), "__file__"));
  if (!file) return nullptr;
  PyRef path = PyRef::steal(Demangle(file.get()));
  if (!path) return nullptr;
  std::string_view p;
  if (!Utf8(path.get(), &p)) return nullptr;
  PyRef data = PyRef::steal(ReadRecordBytes(self, p));
  if (!data) return nullptr;
  return PyUnicode_FromEncodedObject(data.get(), "utf-8", nullptr);
}

}  // namespace pyfleet::internal
