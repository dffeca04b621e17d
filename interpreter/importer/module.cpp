// File: module.cpp
//
// Module `pyfleet`: PEP 489 multi-phase init, the module state (importer_state.h) and
// the lazy torch helpers. Also the C entry PyfleetPackageImporter_FromArchive.
//
//   >>> import pyfleet
//   >>> imp = pyfleet.PackageImporter("model.pt")
#include <sys/stat.h>

#include "interpreter/importer/importer_state.h"
#include "interpreter/importer/package_importer.h"
#include "interpreter/importer/py_ref.h"
#include "interpreter/archive/package_archive.h"

namespace pyfleet::internal {
namespace {

// Sets the owned field *out to a new reference to module.attr (dotted module path),
// releasing what it held (EnsureTorch runs again after a partial failure, so a field may
// already be set). 0, or -1 with an exception set and *out unchanged.
int Load(PyObject** out, const char* module, const char* attr) {
  PyRef mod = PyRef::steal(PyImport_ImportModule(module));
  if (!mod) return -1;
  PyObject* value = PyObject_GetAttrString(mod.get(), attr);
  if (value == nullptr) return -1;
  Py_XSETREF(*out, value);
  return 0;
}

#define PYFLEET_STATE_FIELDS(X)                                                          \
  X(importer_type) X(unpickler_type) X(record_buffer_type) X(record_reader_type)         \
  X(resource_reader_type) X(unpickler_base) X(unpickling_error) X(builtins_dict) X(compile) X(import_module) \
  X(module_spec) X(module_from_spec) X(extension_loader) X(linecache) X(path_split)      \
  X(path_join) X(path_isdir) X(pathlib_path) X(name_mapping) X(import_mapping)           \
  X(bytes_io) X(partial) X(torch_uint8) X(frombuffer) X(torch_empty) X(typed_storage)    \
  X(storage_context_type) X(file_reader_type) X(directory_reader)                        \
  X(get_restore_location) X(validate_sparse) X(element_size) X(mangler_type)             \
  X(imported_modules) X(implicit_allowlist) X(create_directory) X(package_unpickler)     \
  X(security_error) X(integrity_error) X(import_denied) X(audit_event_denied)            \
  X(global_denied) X(safe_globals)

int pyfleet_traverse(PyObject* module, visitproc visit, void* arg) {
  ImporterState* st = static_cast<ImporterState*>(PyModule_GetState(module));
  if (st == nullptr) return 0;
#define X(f) Py_VISIT(st->f);
  PYFLEET_STATE_FIELDS(X)
#undef X
  return 0;
}

int pyfleet_clear(PyObject* module) {
  ImporterState* st = static_cast<ImporterState*>(PyModule_GetState(module));
  if (st == nullptr) return 0;
#define X(f) Py_CLEAR(st->f);
  PYFLEET_STATE_FIELDS(X)
#undef X
  st->torch_ready = false;
  return 0;
}

void pyfleet_free(void* module) {
  pyfleet_clear(static_cast<PyObject*>(module));
  ImporterState* st = static_cast<ImporterState*>(PyModule_GetState(static_cast<PyObject*>(module)));
  if (st != nullptr) {
    delete st->crc_cache;
    st->crc_cache = nullptr;
  }
}

int pyfleet_exec(PyObject* module) {
  ImporterState* st = static_cast<ImporterState*>(PyModule_GetState(module));
  st->crc_cache = new CrcVerdictCache();
  PyRef builtins = PyRef::steal(PyImport_ImportModule("builtins"));
  if (!builtins) return -1;
  st->builtins_dict = PyModule_GetDict(builtins.get());  // borrowed from builtins
  Py_INCREF(st->builtins_dict);
  if (Load(&st->compile, "builtins", "compile") < 0 ||
      Load(&st->unpickler_base, "_pickle", "Unpickler") < 0 ||
      Load(&st->unpickling_error, "_pickle", "UnpicklingError") < 0 ||
      Load(&st->import_module, "importlib", "import_module") < 0 ||
      Load(&st->module_spec, "importlib.machinery", "ModuleSpec") < 0 ||
      Load(&st->extension_loader, "importlib.machinery", "ExtensionFileLoader") < 0 ||
      Load(&st->module_from_spec, "importlib.util", "module_from_spec") < 0 ||
      Load(&st->path_split, "os.path", "split") < 0 ||
      Load(&st->path_join, "os.path", "join") < 0 ||
      Load(&st->path_isdir, "os.path", "isdir") < 0 ||
      Load(&st->pathlib_path, "pathlib", "Path") < 0 ||
      Load(&st->name_mapping, "_compat_pickle", "NAME_MAPPING") < 0 ||
      Load(&st->import_mapping, "_compat_pickle", "IMPORT_MAPPING") < 0 ||
      Load(&st->bytes_io, "io", "BytesIO") < 0 ||
      Load(&st->partial, "functools", "partial") < 0) {
    return -1;
  }
  st->linecache = PyImport_ImportModule("linecache");
  if (st->linecache == nullptr) return -1;
  if (AddSecurityTypes(module, st) < 0 || AddRecordTypes(module, st) < 0 || AddUnpicklerType(module, st) < 0 ||
      AddResourceReaderType(module, st) < 0 || AddImporterType(module, st) < 0) {
    return -1;
  }
  return 0;
}

PyModuleDef_Slot pyfleet_slots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(pyfleet_exec)},
    {0, nullptr},
};

}  // namespace

PyModuleDef pyfleet_module_def = {
    PyModuleDef_HEAD_INIT,
    "pyfleet",
    "pyfleet: torch.package importer implemented in C++ (drop-in for "
    "torch.package.PackageImporter, torch 1.13.1).",
    sizeof(ImporterState),
    security_module_methods,
    pyfleet_slots,
    pyfleet_traverse,
    pyfleet_clear,
    pyfleet_free,
};

ImporterState* StateOfType(PyTypeObject* type) {
  PyObject* module = PyType_GetModuleByDef(type, &pyfleet_module_def);  // borrowed
  if (module == nullptr) return nullptr;
  return static_cast<ImporterState*>(PyModule_GetState(module));
}

int EnsureTorch(ImporterState* st) {
  if (st->torch_ready) return 0;
  if (Load(&st->torch_uint8, "torch", "uint8") < 0 ||
      Load(&st->frombuffer, "torch", "frombuffer") < 0 ||
      Load(&st->torch_empty, "torch", "empty") < 0 ||
      Load(&st->typed_storage, "torch.storage", "TypedStorage") < 0 ||
      Load(&st->storage_context_type, "torch._C", "DeserializationStorageContext") < 0 ||
      Load(&st->file_reader_type, "torch._C", "PyTorchFileReader") < 0 ||
      Load(&st->directory_reader, "torch.package._directory_reader", "DirectoryReader") < 0 ||
      Load(&st->get_restore_location, "torch.serialization", "_get_restore_location") < 0 ||
      Load(&st->validate_sparse, "torch._utils", "_validate_loaded_sparse_tensors") < 0 ||
      Load(&st->element_size, "torch._utils", "_element_size") < 0 ||
      Load(&st->mangler_type, "torch.package._mangling", "PackageMangler") < 0 ||
      Load(&st->imported_modules, "torch.package.package_importer",
           "_package_imported_modules") < 0 ||
      Load(&st->implicit_allowlist, "torch.package.package_importer",
           "IMPLICIT_IMPORT_ALLOWLIST") < 0 ||
      Load(&st->create_directory, "torch.package.file_structure_representation",
           "_create_directory_from_file_list") < 0 ||
      Load(&st->package_unpickler, "torch.package._package_unpickler", "PackageUnpickler") < 0) {
    return -1;
  }
  {
    // Note [Storages in torch 1.13 and 2.x] in pickle_load.cpp: 2.0 added Tensor.untyped_storage.
    PyObject* tensor_type = nullptr;
    if (Load(&tensor_type, "torch", "Tensor") < 0) return -1;
    st->torch2_storages = PyObject_HasAttrString(tensor_type, "untyped_storage");
    Py_DECREF(tensor_type);
  }
  // Make isinstance(imp, torch.package.Importer) true and give the type the Importer
  // methods it inherits in torch (get_name, whichmodule), so OrderedImporter and
  // PackageExporter(importer=(imp, sys_importer)) accept it.
  PyObject* importer_abc = nullptr;
  if (Load(&importer_abc, "torch.package.importer", "Importer") < 0) return -1;
  PyRef abc = PyRef::steal(importer_abc);
  PyRef reg = PyRef::steal(PyObject_CallMethod(abc.get(), "register", "O", st->importer_type));
  if (!reg) return -1;
  for (const char* name : {"get_name", "whichmodule"}) {
    PyRef fn = PyRef::steal(PyObject_GetAttrString(abc.get(), name));
    if (!fn || PyObject_SetAttrString(st->importer_type, name, fn.get()) < 0) return -1;
  }
  st->torch_ready = true;
  return 0;
}

}  // namespace pyfleet::internal

using pyfleet::internal::ImporterState;
using pyfleet::internal::PyRef;

PyMODINIT_FUNC PyInit_pyfleet(void) {
  return PyModuleDef_Init(&pyfleet::internal::pyfleet_module_def);
}

PyObject* PyfleetPackageImporter_FromArchive(const PyfleetArchive* archive) {
  if (archive == nullptr || archive->struct_size < sizeof(PyfleetArchive)) {
    PyErr_SetString(PyExc_ValueError, "PyfleetPackageImporter_FromArchive: bad archive");
    return nullptr;
  }
  PyRef module = PyRef::steal(PyImport_ImportModule("pyfleet"));
  if (!module) return nullptr;
  auto* st = static_cast<ImporterState*>(PyModule_GetState(module.get()));
  if (st == nullptr || pyfleet::internal::EnsureTorch(st) < 0) return nullptr;
  const char* path = archive->path(archive->ctx);
  struct stat sb;
  bool is_dir = path != nullptr && ::stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
  PyRef filename = PyRef::steal(PyUnicode_DecodeFSDefault(path ? path : "<binary>"));
  if (!filename) return nullptr;
  return pyfleet::internal::NewImporter(st, archive, is_dir, filename.get(), filename.get(),
                                        nullptr);
}
