// File: resource_reader.cpp
//
// importlib.resources support: get_resource_reader and `_PackageResourceReader`, the
// importlib.abc.ResourceReader torch's _PackageResourceReader implements
// (open_resource, resource_path, is_resource, contents).
//
//   >>> importlib.resources.read_text(imp.import_module("res"), "hello.txt")
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_split.h"
#include "interpreter/importer/importer_state.h"
#include "interpreter/importer/py_ref.h"

namespace pyfleet::internal {
namespace {

struct ResourceReaderObject {
  PyObject_HEAD
  PyObject* importer;  // owned
  PyObject* fullname;  // owned
};

ResourceReaderObject* AsReader(PyObject* o) { return reinterpret_cast<ResourceReaderObject*>(o); }
PackageImporterObject* ImporterOf(PyObject* o) {
  return reinterpret_cast<PackageImporterObject*>(AsReader(o)->importer);
}

// A record name for zip_reader lookups, from a str. false + exception on error.
bool AsName(PyObject* s, std::string* out) {
  Py_ssize_t len;
  const char* p = PyUnicode_AsUTF8AndSize(s, &len);
  if (p == nullptr) return false;
  out->assign(p, static_cast<size_t>(len));
  return true;
}

PyObject* Reader_open_resource(PyObject* self, PyObject* resource) {
  ImporterState* st = StateOf(self);
  PyRef data = PyRef::steal(PyObject_CallMethod(AsReader(self)->importer, "load_binary", "OO",
                                                AsReader(self)->fullname, resource));
  if (!data) return nullptr;
  return PyObject_CallOneArg(st->bytes_io, data.get());
}

PyObject* Reader_resource_path(PyObject* self, PyObject* resource) {
  ImporterState* st = StateOf(self);
  PackageImporterObject* imp = ImporterOf(self);
  if (imp->is_directory) {
    PyRef rel = PyRef::steal(PyObject_CallFunctionObjArgs(st->path_join, AsReader(self)->fullname,
                                                          resource, nullptr));
    std::string name;
    if (!rel || !AsName(rel.get(), &name)) return nullptr;
    if (HasRecord(imp, name)) {
      return PyObject_CallFunctionObjArgs(st->path_join, imp->filename, AsReader(self)->fullname,
                                          resource, nullptr);
    }
  }
  PyErr_SetNone(PyExc_FileNotFoundError);
  return nullptr;
}

PyObject* Reader_is_resource(PyObject* self, PyObject* name) {
  PyRef path = PyRef::steal(ZipfilePath(ImporterOf(self), AsReader(self)->fullname, name));
  std::string record;
  if (!path || !AsName(path.get(), &record)) return nullptr;
  return PyBool_FromLong(HasRecord(ImporterOf(self), record));
}

// pathlib's view of a relative path: its parts without empty and "." components.
std::vector<std::string> Parts(const std::string& path) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (!part.empty() && part != ".") out.emplace_back(part);
  }
  return out;
}

// contents(): the names directly in the package, as torch's generator yields them
// (for a file deeper down, the name of its immediate parent directory, once).
PyObject* Reader_contents(PyObject* self, PyObject* /*unused*/) {
  PackageImporterObject* imp = ImporterOf(self);
  PyRef base_path = PyRef::steal(ZipfilePath(imp, AsReader(self)->fullname, nullptr));
  std::string base_name;
  if (!base_path || !AsName(base_path.get(), &base_name)) return nullptr;
  std::vector<std::string> base = Parts(base_name);
  PyRef out = PyRef::steal(PyList_New(0));
  if (!out) return nullptr;
  absl::flat_hash_set<std::string> subdirs_seen;
  for (const std::string& filename : *imp->records) {
    std::vector<std::string> parts = Parts(filename);
    if (parts.size() < base.size() || !std::equal(base.begin(), base.end(), parts.begin())) continue;
    std::vector<std::string> rel(parts.begin() + static_cast<ptrdiff_t>(base.size()), parts.end());
    std::string yielded;
    if (rel.size() <= 1) {
      yielded = rel.empty() ? "" : rel[0];  // Path(".").name is ""
    } else {
      const std::string& parent_name = rel[rel.size() - 2];
      if (!subdirs_seen.insert(parent_name).second) continue;
      yielded = parent_name;
    }
    PyRef s = PyRef::steal(PyUnicode_DecodeUTF8(yielded.data(), static_cast<Py_ssize_t>(yielded.size()),
                                                "surrogateescape"));
    if (!s || PyList_Append(out.get(), s.get()) < 0) return nullptr;
  }
  return PyObject_GetIter(out.get());
}

int Reader_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(AsReader(self)->importer);
  Py_VISIT(AsReader(self)->fullname);
  return 0;
}

int Reader_clear(PyObject* self) {
  Py_CLEAR(AsReader(self)->importer);
  Py_CLEAR(AsReader(self)->fullname);
  return 0;
}

void Reader_dealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  Reader_clear(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyObject* get_importer(PyObject* self, void*) { return Py_NewRef(AsReader(self)->importer); }
PyObject* get_fullname(PyObject* self, void*) { return Py_NewRef(AsReader(self)->fullname); }

PyMethodDef reader_methods[] = {
    {"open_resource", Reader_open_resource, METH_O, nullptr},
    {"resource_path", Reader_resource_path, METH_O, nullptr},
    {"is_resource", Reader_is_resource, METH_O, nullptr},
    {"contents", Reader_contents, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef reader_getset[] = {
    {"importer", get_importer, nullptr, nullptr, nullptr},
    {"fullname", get_fullname, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot reader_slots[] = {
    {Py_tp_methods, reader_methods},
    {Py_tp_getset, reader_getset},
    {Py_tp_traverse, reinterpret_cast<void*>(Reader_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(Reader_clear)},
    {Py_tp_dealloc, reinterpret_cast<void*>(Reader_dealloc)},
    {0, nullptr},
};

PyType_Spec reader_spec = {
    "pyfleet._PackageResourceReader", sizeof(ResourceReaderObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION |
        Py_TPFLAGS_IMMUTABLETYPE,
    reader_slots};

}  // namespace

int AddResourceReaderType(PyObject* module, ImporterState* st) {
  st->resource_reader_type = PyType_FromModuleAndSpec(module, &reader_spec, nullptr);
  return st->resource_reader_type == nullptr ? -1 : 0;
}

PyObject* PackageImporter_get_resource_reader(PyObject* op, PyObject* fullname) {
  auto* self = reinterpret_cast<PackageImporterObject*>(op);
  ImporterState* st = StateOf(op);
  PyRef package = PyRef::steal(GetPackage(self, fullname));
  if (!package) {
    if (PyErr_ExceptionMatches(PyExc_ImportError)) {
      PyErr_Clear();
      Py_RETURN_NONE;
    }
    return nullptr;
  }
  PyRef loader = PyRef::steal(PyObject_GetAttrString(package.get(), "__loader__"));
  if (!loader) return nullptr;
  if (loader.get() != op) Py_RETURN_NONE;
  auto* tp = reinterpret_cast<PyTypeObject*>(st->resource_reader_type);
  auto* r = PyObject_GC_New(ResourceReaderObject, tp);
  if (r == nullptr) return nullptr;
  r->importer = Py_NewRef(op);
  r->fullname = Py_NewRef(fullname);
  PyObject_GC_Track(r);
  return reinterpret_cast<PyObject*>(r);
}

}  // namespace pyfleet::internal
