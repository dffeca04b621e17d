// File: pickle_load.cpp
//
// load_pickle: torch's PackageImporter.load_pickle on the C unpickler. The pickle is
// read by `_PackageUnpickler`, a heap subclass of _pickle.Unpickler with find_class
// (modules come from the importer) and persistent_load (storages and reduce_package),
// fed by a _RecordReader whose peek() hands it the whole record at once. Storages are
// torch.frombuffer views of the archive's shared mapping: no byte is copied unless
// copy_storages=True (Note [Copy-on-write mapping] in interpreter/archive/mapped_file.h
// says what in-place writes to them do).
//
//   model = imp.load_pickle("model", "model.pkl")                       # aliases
//   private = imp.load_pickle("model", "model.pkl", copy_storages=True) # copies
//   weights = imp.load_pickle("model", "sd.pkl", safe=True)             # allowlisted globals
#include <atomic>
#include <cstring>
#include <memory>

#include "interpreter/importer/arg_parse.h"
#include "interpreter/importer/importer_state.h"
#include "interpreter/importer/package_importer.h"
#include "interpreter/importer/py_ref.h"

namespace pyfleet::internal {
namespace {

// See Note [Storages that outlive their interpreter] in package_importer.h. A file
// static, against Note [One copy per interpreter]'s rule, because it is no Python
// object: a C function of this library copy, set once before its interpreter starts.
std::atomic<RecordTensorFactory> g_record_tensor_factory{nullptr};

// The fields _PackageUnpickler adds after _pickle.Unpickler's own (whose size is only
// known at run time: see UnpicklerExtraOf).
struct UnpicklerExtra {
  PyObject* importer;          // owned
  PyObject* restore_location;  // owned
  PyObject* loaded_storages;   // owned dict: key -> storage
  PyObject* loaded_reduces;    // owned dict: reduce_id -> object
  PyObject* storage_context;   // owned torch._C.DeserializationStorageContext
  PyfleetArchive load_archive; // one reference while .ctx != NULL: storages come from it
  GlobalAllowlist* allowlist;  // owned; non-NULL in safe mode (Note [Safe unpickling])
  PyObject* record;            // owned str: the record being read (for messages)
  int proto;                   // protocol of the pickle (its PROTO opcode, else 0)
  bool copy_storages;
  bool add_to_context;         // the archive is a ZIP (torch: zip_reader is a PyTorchFileReader)
};

UnpicklerExtra* ExtraOf(PyObject* self) {
  ImporterState* st = StateOf(self);
  Py_ssize_t base = reinterpret_cast<PyTypeObject*>(st->unpickler_base)->tp_basicsize;
  return reinterpret_cast<UnpicklerExtra*>(reinterpret_cast<char*>(self) + base);
}

int Unpickler_traverse(PyObject* self, visitproc visit, void* arg) {
  ImporterState* st = StateOf(self);
  int rc = reinterpret_cast<PyTypeObject*>(st->unpickler_base)->tp_traverse(self, visit, arg);
  if (rc != 0) return rc;
  Py_VISIT(Py_TYPE(self));
  UnpicklerExtra* x = ExtraOf(self);
  Py_VISIT(x->importer);
  Py_VISIT(x->restore_location);
  Py_VISIT(x->loaded_storages);
  Py_VISIT(x->loaded_reduces);
  Py_VISIT(x->storage_context);
  Py_VISIT(x->record);
  return 0;
}

int ClearExtra(PyObject* self) {
  UnpicklerExtra* x = ExtraOf(self);
  Py_CLEAR(x->importer);
  Py_CLEAR(x->restore_location);
  Py_CLEAR(x->loaded_storages);
  Py_CLEAR(x->loaded_reduces);
  Py_CLEAR(x->storage_context);
  Py_CLEAR(x->record);
  delete x->allowlist;
  x->allowlist = nullptr;
  if (x->load_archive.ctx != nullptr) {
    void* ctx = x->load_archive.ctx;
    x->load_archive.ctx = nullptr;
    x->load_archive.release(ctx);
  }
  return 0;
}

int Unpickler_clear(PyObject* self) {
  ClearExtra(self);
  ImporterState* st = StateOf(self);
  return reinterpret_cast<PyTypeObject*>(st->unpickler_base)->tp_clear(self);
}

void Unpickler_dealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  ClearExtra(self);
  // _pickle.Unpickler's dealloc clears its own fields and frees the object. Every
  // instance of a heap type holds a reference to its type: a heap-type dealloc drops it
  // itself (CPython 3.12+, where _pickle is a heap type), a static type's does not
  // (3.11), and then it is ours to drop.
  auto* base = reinterpret_cast<PyTypeObject*>(StateOfType(tp)->unpickler_base);
  const bool base_drops_type = (base->tp_flags & Py_TPFLAGS_HEAPTYPE) != 0;
  base->tp_dealloc(self);
  if (!base_drops_type) Py_DECREF(tp);
}

// find_class(module, name): PackageUnpickler.find_class.
PyObject* Unpickler_find_class(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_Format(PyExc_TypeError, "find_class() takes 2 arguments (%zd given)", nargs);
    return nullptr;
  }
  ImporterState* st = StateOf(self);
  UnpicklerExtra* x = ExtraOf(self);
  PyRef module = PyRef::borrow(args[0]);
  PyRef name = PyRef::borrow(args[1]);
  if (x->proto < 3) {  // fix_imports is always True here, as in torch
    PyRef key = PyRef::steal(PyTuple_Pack(2, module.get(), name.get()));
    if (!key) return nullptr;
    PyObject* mapped = PyDict_GetItemWithError(st->name_mapping, key.get());  // borrowed
    if (mapped != nullptr) {
      if (!PyTuple_Check(mapped) || PyTuple_GET_SIZE(mapped) != 2) {
        PyErr_SetString(PyExc_RuntimeError, "_compat_pickle.NAME_MAPPING values should be 2-tuples");
        return nullptr;
      }
      module = PyRef::borrow(PyTuple_GET_ITEM(mapped, 0));
      name = PyRef::borrow(PyTuple_GET_ITEM(mapped, 1));
    } else if (PyErr_Occurred()) {
      return nullptr;
    } else {
      PyObject* mod = PyDict_GetItemWithError(st->import_mapping, module.get());  // borrowed
      if (mod != nullptr) {
        module = PyRef::borrow(mod);
      } else if (PyErr_Occurred()) {
        return nullptr;
      }
    }
  }
  if (x->allowlist != nullptr) {
    // Before anything is imported: a refused global's module never runs. Package
    // pickles name modules unmangled; demangle anyway, as import_module does.
    PyRef plain = PyRef::steal(Demangle(module.get()));
    if (!plain) return nullptr;
    int allowed = GlobalAllowed(st, *x->allowlist, plain.get(), name.get());
    if (allowed < 0) return nullptr;
    if (!allowed) return RaiseGlobalDenied(st, plain.get(), name.get(), x->record);
  }
  PyRef mod;
  if (Py_IS_TYPE(x->importer, reinterpret_cast<PyTypeObject*>(st->importer_type))) {
    mod = PyRef::steal(ImportModule(reinterpret_cast<PackageImporterObject*>(x->importer), module.get()));
  } else {  // a subclass may override import_module
    mod = PyRef::steal(PyObject_CallMethod(x->importer, "import_module", "O", module.get()));
  }
  if (!mod) return nullptr;
  return PyObject_GetAttr(mod.get(), name.get());
}

// bytes -> str via ascii (torch.serialization._maybe_decode_ascii). New reference.
PyObject* MaybeDecodeAscii(PyObject* v) {
  if (PyBytes_Check(v)) return PyUnicode_DecodeASCII(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), nullptr);
  return Py_NewRef(v);
}

// Unpacks tuple `t` from index `start` into exactly n values, with Python's messages.
bool Unpack(PyObject* t, Py_ssize_t start, Py_ssize_t n, PyObject** out) {
  Py_ssize_t have = PyTuple_GET_SIZE(t) - start;
  if (have < n) {
    PyErr_Format(PyExc_ValueError, "not enough values to unpack (expected %zd, got %zd)", n, have);
    return false;
  }
  if (have > n) {
    PyErr_Format(PyExc_ValueError, "too many values to unpack (expected %zd)", n);
    return false;
  }
  for (Py_ssize_t i = 0; i < n; ++i) out[i] = PyTuple_GET_ITEM(t, start + i);  // borrowed
  return true;
}

// Note [Storages in torch 1.13 and 2.x]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The importer restores storages exactly as the platform's torch.package does, and the
// two releases spell it differently (torch/package/package_importer.py):
//   what                          torch 1.13                 torch 2.x
//   a tensor's untyped storage    tensor._storage()          tensor.untyped_storage()
//   a context storage, typed      t.storage()                t._typed_storage()
//   a typed storage's untyped     s.untyped()                s._untyped_storage
//   a new TypedStorage            TypedStorage(wrap_storage=, dtype=)  ... , _internal=True
// 2.x's public spellings (storage(), untyped()) warn that TypedStorage is deprecated;
// its importer uses the internal ones, and so does this one (st->torch2_storages).

// torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype). New reference or NULL.
PyObject* NewTypedStorage(ImporterState* st, PyObject* untyped, PyObject* dtype) {
  PyRef kw = PyRef::steal(st->torch2_storages
      ? Py_BuildValue("{sOsOsO}", "wrap_storage", untyped, "dtype", dtype, "_internal", Py_True)
      : Py_BuildValue("{sOsO}", "wrap_storage", untyped, "dtype", dtype));
  PyRef empty = PyRef::steal(PyTuple_New(0));
  if (!kw || !empty) return nullptr;
  return PyObject_Call(st->typed_storage, empty.get(), kw.get());
}

// func(importer, *args), as reduce_package calls a packaged reducer. New reference or
// NULL.
PyObject* CallWithImporter(PyObject* func, PyObject* importer, PyObject* args) {
  PyRef call_args = PyRef::steal(PySequence_Tuple(args));
  if (!call_args) return nullptr;
  PyRef full = PyRef::steal(PyTuple_New(PyTuple_GET_SIZE(call_args.get()) + 1));
  if (!full) return nullptr;
  PyTuple_SET_ITEM(full.get(), 0, Py_NewRef(importer));
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(call_args.get()); ++i) {
    PyTuple_SET_ITEM(full.get(), i + 1, Py_NewRef(PyTuple_GET_ITEM(call_args.get(), i)));
  }
  return PyObject_Call(func, full.get(), nullptr);
}

// torch's load_tensor: a storage for record .data/<key>.storage, restored to
// `location`, stored in loaded_storages[key]. 0 or -1.
int LoadTensor(PyObject* self, PyObject* dtype, PyObject* size, PyObject* key, PyObject* location) {
  ImporterState* st = StateOf(self);
  UnpicklerExtra* x = ExtraOf(self);
  auto* importer = reinterpret_cast<PackageImporterObject*>(x->importer);
  PyRef name = PyRef::steal(PyUnicode_FromFormat("%S.storage", key));
  if (!name) return -1;
  PyRef has = PyRef::steal(PyObject_CallMethod(x->storage_context, "has_storage", "O", name.get()));
  if (!has) return -1;
  PyRef storage;
  if (PyObject_IsTrue(has.get())) {
    PyRef t = PyRef::steal(PyObject_CallMethod(x->storage_context, "get_storage", "OO", name.get(), dtype));
    if (!t) return -1;
    storage = PyRef::steal(PyObject_CallMethod(t.get(), st->torch2_storages ? "_typed_storage" : "storage", nullptr));
  } else {
    PyRef record = PyRef::steal(PyUnicode_FromFormat(".data/%U", name.get()));
    Py_ssize_t rlen;
    const char* rname = record ? PyUnicode_AsUTF8AndSize(record.get(), &rlen) : nullptr;
    if (rname == nullptr) return -1;
    // See Note [Who sees an in-place write to a loaded weight] in interpreter/archive/package_archive.h.
    if (x->load_archive.ctx == nullptr && OpenLoadArchive(importer, &x->load_archive) < 0) return -1;
    PyRef buffer = PyRef::steal(ReadRecordBufferFrom(importer, &x->load_archive,
                                                     std::string_view(rname, static_cast<size_t>(rlen))));
    if (!buffer) return -1;
    PyRef elsize = PyRef::steal(PyObject_CallOneArg(st->element_size, dtype));
    if (!elsize) return -1;
    long long numel = PyLong_AsLongLong(size);
    long long esize = PyLong_AsLongLong(elsize.get());
    if (PyErr_Occurred()) return -1;
    size_t have = 0;
    RecordBufferData(buffer.get(), &have);
    unsigned long long nbytes = static_cast<unsigned long long>(numel) * static_cast<unsigned long long>(esize);
    if (numel < 0 || nbytes > have) {
      PyErr_Format(PyExc_RuntimeError,
                   "%U: storage record '%U' has %zu bytes, but the pickle wants %lld elements "
                   "of %S (%llu bytes)",
                   importer->filename, record.get(), have, numel, dtype, nbytes);
      return -1;
    }
    PyRef tensor;
    if (nbytes == 0) {
      PyRef kw = PyRef::steal(Py_BuildValue("{sO}", "dtype", st->torch_uint8));
      PyRef args = PyRef::steal(Py_BuildValue("(i)", 0));
      if (!kw || !args) return -1;
      tensor = PyRef::steal(PyObject_Call(st->torch_empty, args.get(), kw.get()));
    } else {
      if (RecordTensorFactory make = g_record_tensor_factory.load(std::memory_order_acquire)) {
        // Note [Storages that outlive their interpreter] in package_importer.h.
        tensor = PyRef::steal(make(TakeRecordView(buffer.get()), static_cast<size_t>(nbytes)));
      } else {
        PyRef kw = PyRef::steal(Py_BuildValue("{sOsK}", "dtype", st->torch_uint8, "count", nbytes));
        PyRef args = PyRef::steal(PyTuple_Pack(1, buffer.get()));
        if (!kw || !args) return -1;
        tensor = PyRef::steal(PyObject_Call(st->frombuffer, args.get(), kw.get()));
      }
      if (tensor && x->copy_storages) tensor = PyRef::steal(PyObject_CallMethod(tensor.get(), "clone", nullptr));
    }
    if (!tensor) return -1;
    if (x->add_to_context) {
      PyRef r = PyRef::steal(PyObject_CallMethod(x->storage_context, "add_storage", "OO", name.get(), tensor.get()));
      if (!r) return -1;
    }
    PyRef untyped = PyRef::steal(
        PyObject_CallMethod(tensor.get(), st->torch2_storages ? "untyped_storage" : "_storage", nullptr));
    if (!untyped) return -1;
    storage = PyRef::steal(NewTypedStorage(st, untyped.get(), dtype));
  }
  if (!storage) return -1;
  PyRef restored = PyRef::steal(PyObject_CallFunctionObjArgs(x->restore_location, storage.get(), location, nullptr));
  if (!restored) return -1;
  return PyDict_SetItem(x->loaded_storages, key, restored.get());
}

// persistent_load(saved_id): torch's persistent_load closure.
PyObject* Unpickler_persistent_load(PyObject* self, PyObject* saved_id) {
  ImporterState* st = StateOf(self);
  UnpicklerExtra* x = ExtraOf(self);
  if (!PyTuple_Check(saved_id) || PyTuple_GET_SIZE(saved_id) < 1) {
    if (!PyTuple_Check(saved_id)) {
      PyErr_SetNone(PyExc_AssertionError);
    } else {
      PyErr_SetString(PyExc_IndexError, "tuple index out of range");
    }
    return nullptr;
  }
  PyRef typename_ = PyRef::steal(MaybeDecodeAscii(PyTuple_GET_ITEM(saved_id, 0)));
  if (!typename_) return nullptr;
  if (PyUnicode_Check(typename_.get()) &&
      PyUnicode_CompareWithASCIIString(typename_.get(), "storage") == 0) {
    PyObject* v[4];  // storage_type, key, location, size (borrowed from saved_id)
    if (!Unpack(saved_id, 1, 4, v)) return nullptr;
    PyRef dtype = PyRef::steal(PyObject_GetAttrString(v[0], "dtype"));
    if (!dtype) return nullptr;
    int have = PyDict_Contains(x->loaded_storages, v[1]);
    if (have < 0) return nullptr;
    if (!have) {
      PyRef location = PyRef::steal(MaybeDecodeAscii(v[2]));
      if (!location || LoadTensor(self, dtype.get(), v[3], v[1], location.get()) < 0) return nullptr;
    }
    PyObject* storage = PyDict_GetItemWithError(x->loaded_storages, v[1]);  // borrowed
    if (storage == nullptr) {
      if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, v[1]);
      return nullptr;
    }
    PyRef untyped = PyRef::steal(st->torch2_storages ? PyObject_GetAttrString(storage, "_untyped_storage")
                                                     : PyObject_CallMethod(storage, "untyped", nullptr));
    if (!untyped) return nullptr;
    return NewTypedStorage(st, untyped.get(), dtype.get());
  }
  if (PyUnicode_Check(typename_.get()) &&
      PyUnicode_CompareWithASCIIString(typename_.get(), "reduce_package") == 0) {
    Py_ssize_t n = PyTuple_GET_SIZE(saved_id) - 1;
    if (n == 2) {  // the BC path: loaded every time
      PyObject* func = PyTuple_GET_ITEM(saved_id, 1);
      PyObject* args = PyTuple_GET_ITEM(saved_id, 2);
      return CallWithImporter(func, x->importer, args);
    }
    PyObject* v[3];  // reduce_id, func, args
    if (!Unpack(saved_id, 1, 3, v)) return nullptr;
    PyObject* cached = PyDict_GetItemWithError(x->loaded_reduces, v[0]);  // borrowed
    if (cached != nullptr) return Py_NewRef(cached);
    if (PyErr_Occurred()) return nullptr;
    PyRef obj = PyRef::steal(CallWithImporter(v[1], x->importer, v[2]));
    if (!obj || PyDict_SetItem(x->loaded_reduces, v[0], obj.get()) < 0) return nullptr;
    return obj.release();
  }
  // torch builds an error message here but never raises it: the result is None.
  Py_RETURN_NONE;
}

PyMethodDef unpickler_methods[] = {
    {"find_class", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(Unpickler_find_class)),
     METH_FASTCALL, "find_class(module, name): the global from the importer's modules"},
    {"persistent_load", Unpickler_persistent_load, METH_O,
     "persistent_load(saved_id): storages and reduce_package objects"},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot unpickler_slots[] = {
    {Py_tp_methods, unpickler_methods},
    {Py_tp_traverse, reinterpret_cast<void*>(Unpickler_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(Unpickler_clear)},
    {Py_tp_dealloc, reinterpret_cast<void*>(Unpickler_dealloc)},
    {0, nullptr},
};

// Restores self.storage_context / last_map_location to None (torch's finally block).
void ResetContext(PackageImporterObject* importer) {
  Py_XSETREF(importer->storage_context, Py_NewRef(Py_None));
  Py_XSETREF(importer->last_map_location, Py_NewRef(Py_None));
}

// The C unpickler rejected malformed pickle bytes. torch reads pickles with the
// pure-Python pickle._Unpickler, whose errors for the same bytes differ (KeyError,
// struct.error, ...): read them again with torch's own PackageUnpickler (sharing our
// persistent_load and its loaded storages) so the caller sees torch's exception. This
// runs only on that error path. Returns its result (if it accepts the bytes) or NULL
// with its exception; the C unpickler's error is dropped.
PyObject* ReloadWithStockUnpickler(ImporterState* st, PackageImporterObject* self,
                                   PyObject* unpickler, PyObject* buffer, PyObject* context,
                                   PyObject* map_location) {
  PyErr_Clear();
  size_t size = 0;
  const char* data = RecordBufferData(buffer, &size);
  PyRef bytes = PyRef::steal(PyBytes_FromStringAndSize(data, static_cast<Py_ssize_t>(size)));
  if (!bytes) return nullptr;
  PyRef file = PyRef::steal(PyObject_CallOneArg(st->bytes_io, bytes.get()));
  if (!file) return nullptr;
  PyRef stock = PyRef::steal(PyObject_CallFunctionObjArgs(
      st->package_unpickler, reinterpret_cast<PyObject*>(self), file.get(), nullptr));
  if (!stock) return nullptr;
  PyRef pers = PyRef::steal(PyObject_GetAttrString(unpickler, "persistent_load"));
  if (!pers || PyObject_SetAttrString(stock.get(), "persistent_load", pers.get()) < 0) {
    return nullptr;
  }
  Py_XSETREF(self->storage_context, Py_NewRef(context));
  Py_XSETREF(self->last_map_location, Py_NewRef(map_location));
  return PyObject_CallMethod(stock.get(), "load", nullptr);
}

}  // namespace

void SetRecordTensorFactory(RecordTensorFactory factory) {
  g_record_tensor_factory.store(factory, std::memory_order_release);
}

int AddUnpicklerType(PyObject* module, ImporterState* st) {
  auto* base = reinterpret_cast<PyTypeObject*>(st->unpickler_base);
  PyType_Spec spec = {"pyfleet._PackageUnpickler",
                      static_cast<int>(base->tp_basicsize + sizeof(UnpicklerExtra)), 0,
                      Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, unpickler_slots};
  st->unpickler_type = PyType_FromModuleAndSpec(module, &spec, st->unpickler_base);
  return st->unpickler_type == nullptr ? -1 : 0;
}

PyObject* PackageImporter_load_pickle(PyObject* op, PyObject* const* args, Py_ssize_t nargs,
                                      PyObject* kwnames) {
  static const char* const kNames[] = {"package", "resource", "map_location", "copy_storages", "safe",
                                       "allowed_globals"};
  PyObject* v[6] = {nullptr, nullptr, Py_None, Py_False, Py_False, Py_None};
  if (BindArgs("PackageImporter.load_pickle", args, nargs, kwnames, kNames, 3, 2, v) < 0) {
    return nullptr;
  }
  // Note [Safe unpickling] in safe_globals.cpp: safe=True or any allowed_globals.
  int safe = PyObject_IsTrue(v[4]);
  if (safe < 0) return nullptr;
  std::unique_ptr<GlobalAllowlist> allowlist;
  if (safe || v[5] != Py_None) {
    allowlist = std::make_unique<GlobalAllowlist>();
    if (ParseAllowedGlobals(v[5], allowlist.get()) < 0) return nullptr;
  }
  auto* self = reinterpret_cast<PackageImporterObject*>(op);
  ImporterState* st = StateOf(op);
  if (self->modules == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "PackageImporter.__init__() was not called");
    return nullptr;
  }
  int copy = PyObject_IsTrue(v[3]);
  if (copy < 0 || EnsureTorch(st) < 0) return nullptr;
  PyRef path = PyRef::steal(ZipfilePath(self, v[0], v[1]));
  if (!path) return nullptr;
  PyRef restore = PyRef::steal(PyObject_CallOneArg(st->get_restore_location, v[2]));
  if (!restore) return nullptr;
  PyRef context = PyRef::steal(PyObject_CallNoArgs(st->storage_context_type));
  if (!context) return nullptr;
  Py_ssize_t plen;
  const char* p = PyUnicode_AsUTF8AndSize(path.get(), &plen);
  if (p == nullptr) return nullptr;
  PyRef buffer = PyRef::steal(ReadRecordBuffer(self, std::string_view(p, static_cast<size_t>(plen))));
  if (!buffer) return nullptr;
  size_t size = 0;
  const char* data = RecordBufferData(buffer.get(), &size);
  PyRef reader = PyRef::steal(NewRecordReader(st, buffer.get()));
  if (!reader) return nullptr;
  PyRef unpickler = PyRef::steal(PyObject_CallOneArg(st->unpickler_type, reader.get()));
  if (!unpickler) return nullptr;
  UnpicklerExtra* x = ExtraOf(unpickler.get());
  x->importer = Py_NewRef(op);
  x->restore_location = restore.release();
  x->loaded_storages = PyDict_New();
  x->loaded_reduces = PyDict_New();
  x->storage_context = Py_NewRef(context.get());
  x->record = Py_NewRef(path.get());
  x->allowlist = allowlist.release();
  x->proto = size >= 2 && static_cast<unsigned char>(data[0]) == 0x80
                 ? static_cast<unsigned char>(data[1]) : 0;
  x->copy_storages = copy != 0;
  if (self->zip_reader != nullptr) {
    int is_reader = PyObject_IsInstance(self->zip_reader, st->file_reader_type);
    if (is_reader < 0) return nullptr;
    x->add_to_context = is_reader != 0;
  } else {
    x->add_to_context = !self->is_directory;
  }
  if (x->loaded_storages == nullptr || x->loaded_reduces == nullptr) return nullptr;

  Py_XSETREF(self->storage_context, Py_NewRef(context.get()));
  Py_XSETREF(self->last_map_location, Py_NewRef(v[2]));
  PyRef result = PyRef::steal(PyObject_CallMethod(unpickler.get(), "load", nullptr));
  // Not in safe mode: torch's Python unpickler would not apply the allowlist.
  if (!result && x->allowlist == nullptr &&
      (PyErr_ExceptionMatches(st->unpickling_error) || PyErr_ExceptionMatches(PyExc_EOFError))) {
    result = PyRef::steal(ReloadWithStockUnpickler(st, self, unpickler.get(), buffer.get(),
                                                   context.get(), v[2]));
  }
  if (!result) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    ResetContext(self);
    PyErr_Restore(type, value, tb);
    return nullptr;
  }
  ResetContext(self);
  PyRef ok = PyRef::steal(PyObject_CallNoArgs(st->validate_sparse));
  if (!ok) return nullptr;
  return result.release();
}

}  // namespace pyfleet::internal
