// File: importer_type.cpp
//
// The pyfleet.PackageImporter type: construction (from a path, a directory, a binary
// file object, or a PyfleetArchive), the GC triple, attributes and the small methods
// (load_binary, load_text, id, python_version, file_structure). Import machinery,
// pickles and resources live in their own files.
//
//   imp = pyfleet.PackageImporter("m.pt", module_allowed=lambda m: m != "os")
//   imp.load_text("res", "hello.txt")
#include <memory>
#include <optional>
#include <string>

#include "interpreter/importer/arg_parse.h"
#include "interpreter/importer/importer_state.h"
#include <structmember.h>  // after Python.h
#include "interpreter/importer/py_ref.h"
#include "interpreter/archive/archive_abi.h"
#include "interpreter/archive/package_archive.h"
#include "interpreter/archive/sha256.h"

namespace pyfleet::internal {
namespace {

using Self = PackageImporterObject;
Self* AsSelf(PyObject* o) { return reinterpret_cast<Self*>(o); }

// A record of an unzipped package is listed by get_all_records() only if glob("**")
// would find it: no component starting with '.'.
bool IsHiddenPath(const std::string& name) {
  size_t start = 0;
  while (start < name.size()) {
    if (name[start] == '.') return true;
    size_t slash = name.find('/', start);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return false;
}

// Sets an exception for `status` from opening an archive ourselves. Returns -1.
int RaiseOpenError(const absl::Status& status) {
  std::string msg(status.message());
  PyErr_SetString(PyExc_RuntimeError, msg.c_str());
  return -1;
}

// Fills a freshly allocated importer. `describe` is what torch's messages call
// file_or_buffer. 0 or -1 with an exception set. See torch's PackageImporter.__init__.
int Initialize(ImporterState* st, Self* self, const PyfleetArchive* archive, bool is_directory,
               PyObject* filename, PyObject* describe, PyObject* module_allowed) {
  if (self->archive.ctx != nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "PackageImporter is already initialized");
    return -1;
  }
  if (EnsureTorch(st) < 0) return -1;
  archive->retain(archive->ctx);
  self->archive = *archive;
  self->is_directory = is_directory;
  Py_XSETREF(self->filename, Py_NewRef(filename));
  self->records = new std::vector<std::string>();
  size_t n = archive->record_count(archive->ctx);
  self->records->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string name = archive->record_name(archive->ctx, i);
    if (is_directory && IsHiddenPath(name)) continue;
    self->records->push_back(std::move(name));
  }
  self->root = new PathNode(PathNode::Kind::kPackage);
  Py_XSETREF(self->modules, PyDict_New());
  if (self->modules == nullptr) return -1;

  // extern_modules: .data/extern_modules, one per line.
  PyRef raw = PyRef::steal(ReadRecordBytes(self, ".data/extern_modules"));
  if (!raw) return -1;
  PyRef text = PyRef::steal(PyUnicode_FromEncodedObject(raw.get(), "utf-8", nullptr));
  if (!text) return -1;
  Py_XSETREF(self->extern_modules, PyUnicode_Splitlines(text.get(), 0));
  if (self->extern_modules == nullptr) return -1;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->extern_modules); ++i) {
    PyObject* ext = PyList_GET_ITEM(self->extern_modules, i);  // borrowed from the list
    if (module_allowed != nullptr) {
      PyRef ok = PyRef::steal(PyObject_CallOneArg(module_allowed, ext));
      if (!ok) return -1;
      int truth = PyObject_IsTrue(ok.get());
      if (truth < 0) return -1;
      if (!truth) {
        PyErr_Format(PyExc_ImportError,
                     "package '%S' needs the external module '%U' but that module has been "
                     "disallowed",
                     describe, ext);
        return -1;
      }
    }
    Py_ssize_t len;
    const char* s = PyUnicode_AsUTF8AndSize(ext, &len);
    if (s == nullptr || AddExtern(self, std::string(s, static_cast<size_t>(len))) < 0) return -1;
  }
  for (const std::string& name : *self->records) {
    if (AddFile(self, name) < 0) return -1;
  }
  Py_XSETREF(self->patched_builtins, PyDict_Copy(st->builtins_dict));
  if (self->patched_builtins == nullptr) return -1;
  PyRef import_fn = PyRef::steal(PyObject_GetAttrString(reinterpret_cast<PyObject*>(self), "__import__"));
  if (!import_fn || PyDict_SetItemString(self->patched_builtins, "__import__", import_fn.get()) < 0) {
    return -1;
  }
  if (PyDict_SetItemString(self->modules, "torch_package_importer",
                           reinterpret_cast<PyObject*>(self)) < 0) {
    return -1;
  }
  Py_XSETREF(self->mangler, PyObject_CallNoArgs(st->mangler_type));
  if (self->mangler == nullptr) return -1;
  Py_XSETREF(self->mangle_parent, PyObject_CallMethod(self->mangler, "parent_name", nullptr));
  if (self->mangle_parent == nullptr) return -1;
  if (!PyUnicode_Check(self->mangle_parent)) {
    PyErr_SetString(PyExc_TypeError, "PackageMangler.parent_name() must return str");
    return -1;
  }
  Py_XSETREF(self->storage_context, Py_NewRef(Py_None));
  Py_XSETREF(self->last_map_location, Py_NewRef(Py_None));
  return 0;
}

// Opens `file_or_buffer` like torch's constructor: str/Path -> a directory or a ZIP
// file; anything else -> a binary file object read from its current position.
int PackageImporter_init(PyObject* op, PyObject* args, PyObject* kwargs) {
  static const char* kw[] = {"file_or_buffer", "module_allowed", "sha256", nullptr};
  PyObject* file_or_buffer = nullptr;
  PyObject* module_allowed = nullptr;
  PyObject* sha256 = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O$O:PackageImporter", const_cast<char**>(kw),
                                   &file_or_buffer, &module_allowed, &sha256)) {
    return -1;
  }
  // sha256=: see Note [Pinned packages] in interpreter/archive/package_archive.h.
  std::optional<std::string> pinned;
  if (sha256 != Py_None) {
    if (!PyUnicode_Check(sha256)) {
      PyErr_Format(PyExc_TypeError, "PackageImporter: sha256 must be a str of 64 hex digits, not %s",
                   Py_TYPE(sha256)->tp_name);
      return -1;
    }
    const char* hex = PyUnicode_AsUTF8(sha256);
    if (hex == nullptr) return -1;
    absl::StatusOr<std::string> parsed = ParseSha256Hex(hex);
    if (!parsed.ok()) {
      PyErr_Format(PyExc_ValueError, "PackageImporter: sha256: %s", std::string(parsed.status().message()).c_str());
      return -1;
    }
    pinned = *std::move(parsed);
  }
  ImporterState* st = StateOf(op);
  if (EnsureTorch(st) < 0) return -1;
  Self* self = AsSelf(op);
  int is_reader = PyObject_IsInstance(file_or_buffer, st->file_reader_type);
  if (is_reader < 0) return -1;
  if (is_reader) {
    PyErr_SetString(PyExc_TypeError,
                    "pyfleet.PackageImporter cannot wrap a torch._C.PyTorchFileReader; pass "
                    "the package's path or a binary file object instead");
    return -1;
  }
  int is_path = PyUnicode_Check(file_or_buffer);
  if (!is_path) {
    is_path = PyObject_IsInstance(file_or_buffer, st->pathlib_path);
    if (is_path < 0) return -1;
  }
  absl::StatusOr<std::shared_ptr<PackageArchive>> archive;
  PyRef filename;
  bool is_directory = false;
  if (is_path) {
    filename = PyRef::steal(PyObject_Str(file_or_buffer));
    if (!filename) return -1;
    PyRef isdir = PyRef::steal(PyObject_CallOneArg(st->path_isdir, filename.get()));
    if (!isdir) return -1;
    is_directory = isdir.get() == Py_True;
    if (is_directory && pinned.has_value()) {
      PyErr_Format(PyExc_ValueError,
                   "PackageImporter: sha256= pins a package file; %U is a directory (an unzipped package)",
                   filename.get());
      return -1;
    }
    const char* path = PyUnicode_AsUTF8(filename.get());
    if (path == nullptr) return -1;
    std::string p(path);
    const std::string pin = pinned.value_or("");
    Py_BEGIN_ALLOW_THREADS
    archive = is_directory ? PackageArchive::OpenDirectory(p) : PackageArchive::Open(p, st->crc_cache, pin);
    Py_END_ALLOW_THREADS
  } else {
    filename = PyRef::steal(PyUnicode_FromString("<binary>"));
    PyRef start = PyRef::steal(PyObject_CallMethod(file_or_buffer, "tell", nullptr));
    if (!start) return -1;
    PyRef data = PyRef::steal(PyObject_CallMethod(file_or_buffer, "read", nullptr));
    if (!data) return -1;
    Py_buffer view;
    if (PyObject_GetBuffer(data.get(), &view, PyBUF_SIMPLE) < 0) return -1;
    archive = PackageArchive::OpenBytes(view.buf, static_cast<size_t>(view.len), "<binary>", pinned.value_or(""));
    PyBuffer_Release(&view);
    Py_XSETREF(self->source, Py_NewRef(file_or_buffer));
    Py_XSETREF(self->source_start, start.release());
  }
  if (!archive.ok()) {
    if (archive.status().GetPayload(kSha256MismatchPayload).has_value()) {
      RaiseIntegrityError(st, std::string(archive.status().message()), filename.get());
      return -1;
    }
    return RaiseOpenError(archive.status());
  }
  PyfleetArchive abi = MakeArchiveAbi(*std::move(archive));
  int rc = Initialize(st, self, &abi, is_directory, filename.get(), file_or_buffer, module_allowed);
  abi.release(abi.ctx);  // Initialize retained its own reference
  return rc;
}

int PackageImporter_traverse(PyObject* op, visitproc visit, void* arg) {
  Self* self = AsSelf(op);
  Py_VISIT(Py_TYPE(op));
  Py_VISIT(self->dict);
  Py_VISIT(self->filename);
  Py_VISIT(self->source);
  Py_VISIT(self->source_start);
  Py_VISIT(self->zip_reader);
  Py_VISIT(self->modules);
  Py_VISIT(self->extern_modules);
  Py_VISIT(self->patched_builtins);
  Py_VISIT(self->mangler);
  Py_VISIT(self->mangle_parent);
  Py_VISIT(self->storage_context);
  Py_VISIT(self->last_map_location);
  return 0;
}

int PackageImporter_clear(PyObject* op) {
  Self* self = AsSelf(op);
  Py_CLEAR(self->dict);
  Py_CLEAR(self->source);
  Py_CLEAR(self->source_start);
  Py_CLEAR(self->zip_reader);
  Py_CLEAR(self->modules);
  Py_CLEAR(self->extern_modules);
  Py_CLEAR(self->patched_builtins);
  Py_CLEAR(self->mangler);
  Py_CLEAR(self->storage_context);
  Py_CLEAR(self->last_map_location);
  // filename and mangle_parent stay (immutable str, no cycles): error messages and
  // id() keep working on a cleared importer.
  return 0;
}

void PackageImporter_dealloc(PyObject* op) {
  Self* self = AsSelf(op);
  PyTypeObject* tp = Py_TYPE(op);
  PyObject_GC_UnTrack(op);  // bpo-31095: before anything can run a callback
  if (self->weakreflist != nullptr) PyObject_ClearWeakRefs(op);
  PackageImporter_clear(op);
  Py_CLEAR(self->filename);
  Py_CLEAR(self->mangle_parent);
  delete self->records;
  self->records = nullptr;
  delete self->root;
  self->root = nullptr;
  if (self->archive.ctx != nullptr) {
    self->archive.release(self->archive.ctx);
    self->archive.ctx = nullptr;
  }
  tp->tp_free(op);
  Py_DECREF(tp);
}

// Fails with RuntimeError if __init__ never ran (e.g. a subclass skipped it).
bool Ready(Self* self) {
  if (self->archive.ctx != nullptr && self->modules != nullptr) return true;
  PyErr_SetString(PyExc_RuntimeError, "PackageImporter.__init__() was not called");
  return false;
}

// The bytes of `resource` in `package`: torch's
// self.zip_reader.get_record(self._zipfile_path(package, resource)). New bytes or NULL.
PyObject* ReadResourceBytes(Self* self, PyObject* package, PyObject* resource) {
  PyRef path = PyRef::steal(ZipfilePath(self, package, resource));
  if (!path) return nullptr;
  Py_ssize_t len;
  const char* p = PyUnicode_AsUTF8AndSize(path.get(), &len);
  if (p == nullptr) return nullptr;
  return ReadRecordBytes(self, std::string_view(p, static_cast<size_t>(len)));
}

// --- methods ------------------------------------------------------------------------

PyObject* PackageImporter_load_binary(PyObject* op, PyObject* const* args, Py_ssize_t nargs,
                                      PyObject* kwnames) {
  static const char* const kNames[] = {"package", "resource"};
  PyObject* v[2] = {nullptr, nullptr};
  if (!Ready(AsSelf(op)) ||
      BindArgs("PackageImporter.load_binary", args, nargs, kwnames, kNames, 2, 2, v) < 0) {
    return nullptr;
  }
  return ReadResourceBytes(AsSelf(op), v[0], v[1]);
}

PyObject* PackageImporter_load_text(PyObject* op, PyObject* const* args, Py_ssize_t nargs,
                                    PyObject* kwnames) {
  static const char* const kNames[] = {"package", "resource", "encoding", "errors"};
  PyRef utf8 = PyRef::steal(PyUnicode_FromString("utf-8"));
  PyRef strict = PyRef::steal(PyUnicode_FromString("strict"));
  PyObject* v[4] = {nullptr, nullptr, utf8.get(), strict.get()};
  if (!Ready(AsSelf(op)) ||
      BindArgs("PackageImporter.load_text", args, nargs, kwnames, kNames, 4, 2, v) < 0) {
    return nullptr;
  }
  PyRef data = PyRef::steal(ReadResourceBytes(AsSelf(op), v[0], v[1]));
  if (!data) return nullptr;
  // data.decode(encoding, errors), with bytes.decode's own argument checks.
  return PyObject_CallMethod(data.get(), "decode", "OO", v[2], v[3]);
}

PyObject* PackageImporter_id(PyObject* op, PyObject* /*unused*/) {
  return Py_NewRef(AsSelf(op)->mangle_parent);
}

PyObject* PackageImporter_python_version(PyObject* op, PyObject* /*unused*/) {
  Self* self = AsSelf(op);
  if (!Ready(self)) return nullptr;
  if (!HasRecord(self, ".data/python_version")) Py_RETURN_NONE;
  PyRef data = PyRef::steal(ReadRecordBytes(self, ".data/python_version"));
  if (!data) return nullptr;
  PyRef text = PyRef::steal(PyUnicode_FromEncodedObject(data.get(), "utf-8", nullptr));
  if (!text) return nullptr;
  return PyObject_CallMethod(text.get(), "strip", nullptr);
}

PyObject* PackageImporter_file_structure(PyObject* op, PyObject* const* args, Py_ssize_t nargs,
                                         PyObject* kwnames) {
  static const char* const kNames[] = {"include", "exclude"};
  PyRef all = PyRef::steal(PyUnicode_FromString("**"));
  PyRef none = PyRef::steal(PyTuple_New(0));
  PyObject* v[2] = {all.get(), none.get()};
  Self* self = AsSelf(op);
  if (!Ready(self) ||
      BindArgs("PackageImporter.file_structure", args, nargs, kwnames, kNames, 0, 0, v) < 0) {
    return nullptr;
  }
  ImporterState* st = StateOf(op);
  PyRef records = PyRef::steal(RecordList(self));
  if (!records) return nullptr;
  return PyObject_CallFunctionObjArgs(st->create_directory, self->filename, records.get(), v[0],
                                      v[1], nullptr);
}

PyObject* PackageImporter_zipfile_path(PyObject* op, PyObject* const* args, Py_ssize_t nargs,
                                       PyObject* kwnames) {
  static const char* const kNames[] = {"package", "resource"};
  PyObject* v[2] = {nullptr, Py_None};
  if (!Ready(AsSelf(op)) ||
      BindArgs("PackageImporter._zipfile_path", args, nargs, kwnames, kNames, 2, 1, v) < 0) {
    return nullptr;
  }
  return ZipfilePath(AsSelf(op), v[0], v[1] == Py_None ? nullptr : v[1]);
}

PyObject* PackageImporter_get_package(PyObject* op, PyObject* package) {
  if (!Ready(AsSelf(op))) return nullptr;
  return GetPackage(AsSelf(op), package);
}

#define FASTCALL_KW(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(f))

PyMethodDef importer_methods[] = {
    {"import_module", FASTCALL_KW(PackageImporter_import_module), METH_FASTCALL | METH_KEYWORDS,
     "import_module(name, package=None): load a module from the package (or an extern one)."},
    {"load_binary", FASTCALL_KW(PackageImporter_load_binary), METH_FASTCALL | METH_KEYWORDS,
     "load_binary(package, resource) -> bytes"},
    {"load_text", FASTCALL_KW(PackageImporter_load_text), METH_FASTCALL | METH_KEYWORDS,
     "load_text(package, resource, encoding='utf-8', errors='strict') -> str"},
    {"load_pickle", FASTCALL_KW(PackageImporter_load_pickle), METH_FASTCALL | METH_KEYWORDS,
     "load_pickle(package, resource, map_location=None, *, copy_storages=False, safe=False,\n"
     "            allowed_globals=None)\n\n"
     "Unpickles a resource. Tensor storages alias a private copy-on-write mapping of the\n"
     "archive made for this load (no bytes copied) unless copy_storages=True.\n"
     "safe=True (or any allowed_globals) refuses every global outside pyfleet.safe_globals()\n"
     "(torch.load(weights_only=True)'s set, dtypes, builtins.set/frozenset) and allowed_globals ('module.name', 'module.*',\n"
     "'package.**') with pyfleet.GlobalDenied, a pickle.UnpicklingError naming it."},
    {"id", PackageImporter_id, METH_NOARGS, "id() -> '<torch_package_N>'"},
    {"python_version", PackageImporter_python_version, METH_NOARGS,
     "python_version() -> str or None"},
    {"file_structure", FASTCALL_KW(PackageImporter_file_structure), METH_FASTCALL | METH_KEYWORDS,
     "file_structure(*, include='**', exclude=()) -> torch.package Directory"},
    {"get_source", PackageImporter_get_source, METH_O, "get_source(module_name) -> str"},
    {"get_resource_reader", PackageImporter_get_resource_reader, METH_O,
     "get_resource_reader(fullname): importlib.resources reader, or None"},
    {"__import__", FASTCALL_KW(PackageImporter___import__), METH_FASTCALL | METH_KEYWORDS,
     "__import__(name, globals=None, locals=None, fromlist=(), level=0)"},
    {"_zipfile_path", FASTCALL_KW(PackageImporter_zipfile_path), METH_FASTCALL | METH_KEYWORDS,
     nullptr},
    {"_get_package", PackageImporter_get_package, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// --- attributes ---------------------------------------------------------------------

PyObject* GetOrNone(PyObject* v) { return Py_NewRef(v != nullptr ? v : Py_None); }

PyObject* get_filename(PyObject* op, void*) { return GetOrNone(AsSelf(op)->filename); }
PyObject* get_modules(PyObject* op, void*) { return GetOrNone(AsSelf(op)->modules); }
PyObject* get_extern_modules(PyObject* op, void*) { return GetOrNone(AsSelf(op)->extern_modules); }
PyObject* get_patched_builtins(PyObject* op, void*) { return GetOrNone(AsSelf(op)->patched_builtins); }
PyObject* get_mangler(PyObject* op, void*) { return GetOrNone(AsSelf(op)->mangler); }
PyObject* get_storage_context(PyObject* op, void*) { return GetOrNone(AsSelf(op)->storage_context); }
PyObject* get_last_map_location(PyObject* op, void*) {
  return GetOrNone(AsSelf(op)->last_map_location);
}
PyObject* get_zip_reader(PyObject* op, void*) {
  if (!Ready(AsSelf(op))) return nullptr;
  return GetZipReader(AsSelf(op));
}
// Unpickler: torch's `lambda *args, **kwargs: PackageUnpickler(self, *args, **kwargs)`.
PyObject* get_unpickler(PyObject* op, void*) {
  ImporterState* st = StateOf(op);
  if (EnsureTorch(st) < 0) return nullptr;
  return PyObject_CallFunctionObjArgs(st->partial, st->package_unpickler, op, nullptr);
}

int SetField(PyObject** field, PyObject* value, const char* name) {
  if (value == nullptr) {
    PyErr_Format(PyExc_AttributeError, "cannot delete attribute '%s'", name);
    return -1;
  }
  Py_XSETREF(*field, Py_NewRef(value));
  return 0;
}
int set_storage_context(PyObject* op, PyObject* v, void*) {
  return SetField(&AsSelf(op)->storage_context, v, "storage_context");
}
int set_last_map_location(PyObject* op, PyObject* v, void*) {
  return SetField(&AsSelf(op)->last_map_location, v, "last_map_location");
}
int set_zip_reader(PyObject* op, PyObject* v, void*) {
  return SetField(&AsSelf(op)->zip_reader, v, "zip_reader");
}
int set_modules(PyObject* op, PyObject* v, void*) {
  if (v != nullptr && !PyDict_Check(v)) {
    PyErr_SetString(PyExc_TypeError, "modules must be a dict");
    return -1;
  }
  return SetField(&AsSelf(op)->modules, v, "modules");
}

PyGetSetDef importer_getset[] = {
    {"filename", get_filename, nullptr, "the path, or '<binary>'", nullptr},
    {"zip_reader", get_zip_reader, set_zip_reader,
     "torch's reader over the same archive (PyTorchFileReader or DirectoryReader), created "
     "on first access (TorchScript needs it)", nullptr},
    {"modules", get_modules, set_modules, "modules loaded by this importer", nullptr},
    {"extern_modules", get_extern_modules, nullptr, "modules the package takes from sys.modules",
     nullptr},
    {"patched_builtins", get_patched_builtins, nullptr, "builtins of packaged modules", nullptr},
    {"_mangler", get_mangler, nullptr, nullptr, nullptr},
    {"storage_context", get_storage_context, set_storage_context, nullptr, nullptr},
    {"last_map_location", get_last_map_location, set_last_map_location, nullptr, nullptr},
    {"Unpickler", get_unpickler, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMemberDef importer_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(Self, dict), READONLY, nullptr},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Self, weakreflist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot importer_slots[] = {
    {Py_tp_init, reinterpret_cast<void*>(PackageImporter_init)},
    {Py_tp_traverse, reinterpret_cast<void*>(PackageImporter_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(PackageImporter_clear)},
    {Py_tp_dealloc, reinterpret_cast<void*>(PackageImporter_dealloc)},
    {Py_tp_methods, importer_methods},
    {Py_tp_getset, importer_getset},
    {Py_tp_members, importer_members},
    {Py_tp_doc, const_cast<char*>(
        "PackageImporter(file_or_buffer, module_allowed=lambda module_name: True, *, sha256=None)\n\n"
        "Loads code and data written by torch.package.PackageExporter, exactly like\n"
        "torch.package.PackageImporter (torch 1.13.1). sha256='<64 hex digits>' pins the\n"
        "archive: if the file's SHA-256 differs, pyfleet.IntegrityError (a PermissionError)\n"
        "is raised before anything is read from it. Tensor storages are not copied:\n"
        "they alias a private, copy-on-write mapping of the archive, and an in-place\n"
        "write to a loaded tensor never reaches the file. Who else sees such a write\n"
        "depends on who opened the archive; see Note [Who sees an in-place write to a\n"
        "loaded weight] in pyfleet's interpreter/archive/package_archive.h (an importer\n"
        "opened from Python, like this one, isolates each load_pickle as torch does).\n"
        "load_pickle(..., copy_storages=True) makes ordinary private copies instead.")},
    {0, nullptr},
};

PyType_Spec importer_spec = {
    "pyfleet.PackageImporter", sizeof(Self), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, importer_slots};

}  // namespace

int AddImporterType(PyObject* module, ImporterState* st) {
  st->importer_type = PyType_FromModuleAndSpec(module, &importer_spec, nullptr);
  if (st->importer_type == nullptr) return -1;
  return PyModule_AddObjectRef(module, "PackageImporter", st->importer_type);
}

PyObject* NewImporter(ImporterState* st, const PyfleetArchive* archive, bool is_directory,
                      PyObject* filename, PyObject* describe, PyObject* module_allowed) {
  auto* tp = reinterpret_cast<PyTypeObject*>(st->importer_type);
  PyRef obj = PyRef::steal(tp->tp_alloc(tp, 0));
  if (!obj) return nullptr;
  if (Initialize(st, AsSelf(obj.get()), archive, is_directory, filename, describe,
                 module_allowed) < 0) {
    return nullptr;
  }
  return obj.release();
}

}  // namespace pyfleet::internal
