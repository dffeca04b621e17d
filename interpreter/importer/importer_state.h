// File: importer_state.h
//
// Shared declarations of the `pyfleet` module's C++ files: the module state (PEP 3121),
// the PackageImporter object layout and the helpers the files call on each other.
//
//   ImporterState* st = StateOf(self);           // from any object of our types
//   if (EnsureTorch(st) < 0) return nullptr;     // torch helpers, imported lazily
//   PyObject* b = ReadRecordBytes(self, "res/hello.txt");
//
// Note [One copy per interpreter]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Every pyfleet interpreter has its own copy of this code (it is linked into each copy
// of the interpreter library), and Debian's python3 loads one more as an extension.
// All Python objects live in the module state, never in file statics, so even two
// modules of one copy (subinterpreters) would not share objects. The only statics are
// const tables (method defs, specs).
#pragma once

#include <Python.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "pyfleet/interpreter_abi.h"

namespace pyfleet::internal {

class CrcVerdictCache;  // interpreter/archive/package_archive.h

// A node of the importer's module tree: torch's _PackageNode / _ModuleNode / _ExternNode.
struct PathNode {
  enum class Kind : uint8_t { kPackage, kModule, kExtern };
  explicit PathNode(Kind k) : kind(k) {}
  Kind kind;
  std::optional<std::string> source_file;  // record name of the module's source
  absl::flat_hash_map<std::string, std::unique_ptr<PathNode>> children;  // packages only
};

// State of module `pyfleet`, per PEP 3121. Everything is owned. The torch block is
// filled by EnsureTorch on first use (importing torch from PyInit would make
// `import pyfleet` cost a torch import even for users that never load a package).
struct ImporterState {
  PyObject* importer_type;       // pyfleet.PackageImporter
  PyObject* unpickler_type;      // pyfleet._PackageUnpickler (subclass of _pickle.Unpickler)
  PyObject* record_buffer_type;  // pyfleet._RecordBuffer
  PyObject* record_reader_type;  // pyfleet._RecordReader
  PyObject* resource_reader_type;// pyfleet._PackageResourceReader
  PyObject* unpickler_base;      // _pickle.Unpickler
  PyObject* unpickling_error;    // _pickle.UnpicklingError
  PyObject* builtins_dict;       // builtins.__dict__
  PyObject* compile;             // builtins.compile
  PyObject* import_module;       // importlib.import_module
  PyObject* module_spec;         // importlib.machinery.ModuleSpec
  PyObject* module_from_spec;    // importlib.util.module_from_spec
  PyObject* extension_loader;    // importlib.machinery.ExtensionFileLoader
  PyObject* linecache;           // module linecache
  PyObject* path_split;          // os.path.split
  PyObject* path_join;           // os.path.join
  PyObject* path_isdir;          // os.path.isdir
  PyObject* pathlib_path;        // pathlib.Path
  PyObject* name_mapping;        // _compat_pickle.NAME_MAPPING
  PyObject* import_mapping;      // _compat_pickle.IMPORT_MAPPING
  PyObject* bytes_io;            // io.BytesIO
  PyObject* partial;             // functools.partial
  // torch, filled by EnsureTorch:
  bool torch_ready;
  PyObject* torch_uint8;         // torch.uint8
  PyObject* frombuffer;          // torch.frombuffer
  PyObject* torch_empty;         // torch.empty
  PyObject* typed_storage;       // torch.storage.TypedStorage
  // Which torch's storage API to speak: Note [Storages in torch 1.13 and 2.x] in
  // pickle_load.cpp. Set by EnsureTorch.
  bool torch2_storages;
  PyObject* storage_context_type;// torch._C.DeserializationStorageContext
  PyObject* file_reader_type;    // torch._C.PyTorchFileReader
  PyObject* directory_reader;    // torch.package._directory_reader.DirectoryReader
  PyObject* get_restore_location;// torch.serialization._get_restore_location
  PyObject* validate_sparse;     // torch._utils._validate_loaded_sparse_tensors
  PyObject* element_size;        // torch._utils._element_size
  PyObject* mangler_type;        // torch.package._mangling.PackageMangler
  PyObject* imported_modules;    // torch.package.package_importer._package_imported_modules
  PyObject* implicit_allowlist;  // torch.package.package_importer.IMPLICIT_IMPORT_ALLOWLIST
  PyObject* create_directory;    // file_structure_representation._create_directory_from_file_list
  PyObject* package_unpickler;   // torch.package._package_unpickler.PackageUnpickler
  // Security (security_policy.cpp, safe_globals.cpp): exception types, made in exec.
  PyObject* security_error;      // pyfleet.SecurityError(PermissionError)
  PyObject* integrity_error;     // pyfleet.IntegrityError(SecurityError)
  PyObject* import_denied;       // pyfleet.ImportDenied(SecurityError)
  PyObject* audit_event_denied;  // pyfleet.AuditEventDenied(SecurityError)
  PyObject* global_denied;       // pyfleet.GlobalDenied(pickle.UnpicklingError, SecurityError)
  PyObject* safe_globals;        // frozenset "module.name" safe load_pickle always allows; NULL until first use
  // Owned (deleted in m_free): CRC verdicts shared by the archives this module opens,
  // so a fresh importer of an unchanged file does not hash it again (Note [Lazy CRC
  // verification] in interpreter/archive/package_archive.h).
  CrcVerdictCache* crc_cache;
};

// The PackageImporter object. See Note [One copy per interpreter].
struct PackageImporterObject {
  PyObject_HEAD
  PyObject* dict;               // owned: instance __dict__ (or NULL)
  PyObject* weakreflist;        // weak references
  PyfleetArchive archive;       // one reference retained while archive.ctx != NULL
  bool is_directory;            // archive is an unzipped package (DirectoryReader)
  PyObject* filename;           // owned str
  PyObject* source;             // owned: the binary file object it was read from, or NULL
  PyObject* source_start;       // owned: that object's tell() when we got it, or NULL
  PyObject* zip_reader;         // owned: created on first access, or NULL
  PyObject* modules;            // owned dict: name -> module (our sys.modules)
  PyObject* extern_modules;     // owned list of str
  PyObject* patched_builtins;   // owned dict: builtins with our __import__
  PyObject* mangler;            // owned torch.package._mangling.PackageMangler
  PyObject* mangle_parent;      // owned str "<torch_package_N>"
  PyObject* storage_context;    // owned (None outside load_pickle)
  PyObject* last_map_location;  // owned (None outside load_pickle)
  std::vector<std::string>* records;  // owned: names as get_all_records() lists them
  PathNode* root;               // owned module tree
};

// --- shared helpers -----------------------------------------------------------------
// hasattr()+getattr() in one step: 1 and *out a new reference if `o` has attribute
// `name`; 0 and *out NULL (AttributeError cleared) if not; -1 with the exception set
// on any other error.
inline int LookupAttr(PyObject* o, const char* name, PyObject** out) {
  *out = PyObject_GetAttrString(o, name);
  if (*out != nullptr) return 1;
  if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
  PyErr_Clear();
  return 0;
}

// --- module.cpp -------------------------------------------------------------------
extern PyModuleDef pyfleet_module_def;
// The state of the `pyfleet` module that defined `type` (or a base of it). Borrowed.
ImporterState* StateOfType(PyTypeObject* type);
inline ImporterState* StateOf(PyObject* self) { return StateOfType(Py_TYPE(self)); }
// Imports the torch helpers into `st` once. 0 or -1 with an exception set.
int EnsureTorch(ImporterState* st);

// --- importer_type.cpp --------------------------------------------------------------
int AddImporterType(PyObject* module, ImporterState* st);
// Creates an importer over `archive` (retained). New reference or NULL.
PyObject* NewImporter(ImporterState* st, const PyfleetArchive* archive, bool is_directory,
                      PyObject* filename, PyObject* describe, PyObject* module_allowed);
inline bool IsImporter(ImporterState* st, PyObject* o) {
  return PyObject_TypeCheck(o, reinterpret_cast<PyTypeObject*>(st->importer_type));
}

// --- records.cpp --------------------------------------------------------------------
// Index of record `name` or -1 (no exception).
int64_t FindRecord(PackageImporterObject* self, std::string_view name);
// A new _RecordBuffer over record `name` (zero copy for stored records), or NULL with
// the exception torch's zip_reader.get_record raises for it.
PyObject* ReadRecordBuffer(PackageImporterObject* self, std::string_view name);
// The same from `archive`, a snapshot of the importer's (see OpenLoadArchive).
PyObject* ReadRecordBufferFrom(PackageImporterObject* self, const PyfleetArchive* archive,
                               std::string_view name);
// Sets *out to the archive one load_pickle reads storages from, holding one reference:
// a snapshot of the importer's archive with its own private mapping when the importer
// can make one (Note [Who sees an in-place write to a loaded weight] in interpreter/archive/package_archive.h),
// else the importer's archive itself. 0, or -1 with RuntimeError.
int OpenLoadArchive(PackageImporterObject* self, PyfleetArchive* out);
// New bytes with the content of record `name`, or NULL.
PyObject* ReadRecordBytes(PackageImporterObject* self, std::string_view name);
// Pointer and size of a _RecordBuffer's bytes (borrowed from `buffer`).
const char* RecordBufferData(PyObject* buffer, size_t* size);
// Moves the record view out of a _RecordBuffer, which is empty (size 0) afterwards.
PyfleetRecordView TakeRecordView(PyObject* buffer);
// A new _RecordReader (file-like: read, readline, peek, readinto) over `buffer`.
PyObject* NewRecordReader(ImporterState* st, PyObject* buffer);
int AddRecordTypes(PyObject* module, ImporterState* st);
// The zip_reader attribute (created lazily). New reference or NULL.
PyObject* GetZipReader(PackageImporterObject* self);
// get_all_records() as a new list of str.
PyObject* RecordList(PackageImporterObject* self);
// has_record(name): 1, 0.
int HasRecord(PackageImporterObject* self, std::string_view name);

// --- import_machinery.cpp -------------------------------------------------------------
// import_module(name): demangles our own prefix, then imports. New reference or NULL.
PyObject* ImportModule(PackageImporterObject* self, PyObject* name);
// _gcd_import(name, package, level): sanity checks, relative names, then load.
// New reference or NULL.
PyObject* GcdImport(PackageImporterObject* self, PyObject* name, PyObject* package, long level);
// torch.package._mangling.demangle (any importer's prefix). New reference or NULL.
PyObject* Demangle(PyObject* name);
// mangle(name) with this importer's prefix. New reference or NULL.
PyObject* Mangle(PackageImporterObject* self, PyObject* name);
// _get_package / _zipfile_path. New references or NULL.
PyObject* GetPackage(PackageImporterObject* self, PyObject* package);
PyObject* ZipfilePath(PackageImporterObject* self, PyObject* package, PyObject* resource);
PyObject* PackageImporter_import_module(PyObject* self, PyObject* const* args,
                                        Py_ssize_t nargs, PyObject* kwnames);
PyObject* PackageImporter_get_source(PyObject* self, PyObject* module_name);

// --- dunder_import.cpp ---------------------------------------------------------------
PyObject* PackageImporter___import__(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                                     PyObject* kwnames);

// --- module_tree.cpp ----------------------------------------------------------------
// torch's _add_extern / _add_file. 0 or -1 with ImportError set.
int AddExtern(PackageImporterObject* self, const std::string& extern_name);
int AddFile(PackageImporterObject* self, const std::string& filename);

// --- pickle_load.cpp ----------------------------------------------------------------
int AddUnpicklerType(PyObject* module, ImporterState* st);
PyObject* PackageImporter_load_pickle(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                                      PyObject* kwnames);

// --- resource_reader.cpp ------------------------------------------------------------
int AddResourceReaderType(PyObject* module, ImporterState* st);
PyObject* PackageImporter_get_resource_reader(PyObject* self, PyObject* fullname);

// --- security_policy.cpp -----------------------------------------------------------
// See Note [Security policy: one per CPython runtime] and Note [What the audit hook
// refuses] there. Module functions install_security_policy, security_policy, safe_globals.
extern PyMethodDef security_module_methods[];
// Creates the exception types (SecurityError and its subclasses) in `st` and `module`.
int AddSecurityTypes(PyObject* module, ImporterState* st);
// 0 if the installed policy (if any) lets packages import the extern module `name`,
// else -1 with pyfleet.ImportDenied naming it and the package.
int CheckExternAllowed(PackageImporterObject* self, PyObject* name);
// Raises pyfleet.IntegrityError(message) with .path = filename. Returns NULL.
PyObject* RaiseIntegrityError(ImporterState* st, const std::string& message, PyObject* filename);

// --- safe_globals.cpp ------------------------------------------------------------------
// See Note [Safe unpickling] there.
struct GlobalAllowlist {
  absl::flat_hash_set<std::string> exact;    // "module.name"
  absl::flat_hash_set<std::string> modules;  // from "module.*"
  std::vector<std::string> trees;            // from "package.**"
};
// allowed_globals (None, or an iterable of str) into `out`. 0, or -1 with TypeError or
// ValueError naming the bad entry.
int ParseAllowedGlobals(PyObject* iterable, GlobalAllowlist* out);
// 1 if global `module`.`name` is allowed (the safe set or `allow`), 0 if not, -1 on error.
int GlobalAllowed(ImporterState* st, const GlobalAllowlist& allow, PyObject* module, PyObject* name);
// Raises pyfleet.GlobalDenied for `module`.`name` read from `record`. Returns NULL.
PyObject* RaiseGlobalDenied(ImporterState* st, PyObject* module, PyObject* name, PyObject* record);
// pyfleet.safe_globals(): a new reference to the frozenset, or NULL.
PyObject* PyfleetSafeGlobals(PyObject* module, PyObject* unused);

// --- errors.cpp ---------------------------------------------------------------------
// Raises the exception for a failed archive read/open of `what` and frees `status`.
// Returns NULL.
PyObject* RaiseArchiveStatus(PackageImporterObject* self, PyfleetStatus* status);
// Raises `type`(msg) with exc.name = name (ModuleNotFoundError/ImportError). NULL.
PyObject* RaiseImportError(PyObject* type, PyObject* msg, PyObject* name);

}  // namespace pyfleet::internal
