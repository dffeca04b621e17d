// File: records.cpp
//
// Record access for the importer: lookups and reads through the PyfleetArchive ABI,
// `_RecordBuffer` (a buffer-protocol object over one record view: torch.frombuffer
// over it aliases the archive's mapping) and `_RecordReader` (a file-like object over
// a buffer whose peek() hands the C unpickler the whole record at once, so it unpickles
// straight from the mapping).
//
//   PyRef buf = PyRef::steal(ReadRecordBuffer(self, ".data/0.storage"));
//   PyRef t = PyRef::steal(PyObject_CallFunction(frombuffer, ...buf...));
#include <cstring>

#include "interpreter/importer/importer_state.h"
#include "interpreter/importer/py_ref.h"
#include "interpreter/archive/archive_abi.h"

namespace pyfleet::internal {
namespace {

// --- _RecordBuffer --------------------------------------------------------------------

struct RecordBufferObject {
  PyObject_HEAD
  PyfleetRecordView view;  // owned: released in dealloc
};

int RecordBuffer_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* rb = reinterpret_cast<RecordBufferObject*>(self);
  // Writable: stored records alias a copy-on-write mapping (Note [Copy-on-write
  // mapping] in interpreter/archive/mapped_file.h), deflated ones a private buffer.
  static char empty[1] = {0};  // const-like: never written (size 0)
  void* data = rb->view.size == 0 ? empty : const_cast<void*>(rb->view.data);
  return PyBuffer_FillInfo(view, self, data, static_cast<Py_ssize_t>(rb->view.size),
                           /*readonly=*/0, flags);
}

void RecordBuffer_dealloc(PyObject* self) {
  auto* rb = reinterpret_cast<RecordBufferObject*>(self);
  PyTypeObject* tp = Py_TYPE(self);
  if (rb->view.release != nullptr) rb->view.release(rb->view.owner);
  rb->view = PyfleetRecordView{};
  tp->tp_free(self);
  Py_DECREF(tp);
}

Py_ssize_t RecordBuffer_len(PyObject* self) {
  return static_cast<Py_ssize_t>(reinterpret_cast<RecordBufferObject*>(self)->view.size);
}

PyType_Slot record_buffer_slots[] = {
    {Py_bf_getbuffer, reinterpret_cast<void*>(RecordBuffer_getbuffer)},
    {Py_tp_dealloc, reinterpret_cast<void*>(RecordBuffer_dealloc)},
    {Py_sq_length, reinterpret_cast<void*>(RecordBuffer_len)},
    {Py_tp_doc, const_cast<char*>("Bytes of one package record (zero copy for stored records).")},
    {0, nullptr},
};

PyType_Spec record_buffer_spec = {
    "pyfleet._RecordBuffer", sizeof(RecordBufferObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
    record_buffer_slots};

// --- _RecordReader --------------------------------------------------------------------

struct RecordReaderObject {
  PyObject_HEAD
  PyObject* buffer;  // owned _RecordBuffer
  const char* data;  // borrowed from buffer
  size_t size;
  size_t pos;
};

size_t Remaining(RecordReaderObject* r) { return r->size - r->pos; }

// read(n=-1): like io.BytesIO.read.
PyObject* RecordReader_read(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  auto* r = reinterpret_cast<RecordReaderObject*>(self);
  Py_ssize_t n = -1;
  if (nargs > 0 && args[0] != Py_None) {
    n = PyLong_AsSsize_t(args[0]);
    if (n == -1 && PyErr_Occurred()) return nullptr;
  }
  size_t take = n < 0 ? Remaining(r) : std::min(Remaining(r), static_cast<size_t>(n));
  PyObject* out = PyBytes_FromStringAndSize(r->data + r->pos, static_cast<Py_ssize_t>(take));
  if (out != nullptr) r->pos += take;
  return out;
}

PyObject* RecordReader_readline(PyObject* self, PyObject* /*unused*/) {
  auto* r = reinterpret_cast<RecordReaderObject*>(self);
  const void* nl = std::memchr(r->data + r->pos, '\n', Remaining(r));
  size_t take = nl == nullptr ? Remaining(r)
                              : static_cast<size_t>(static_cast<const char*>(nl) - (r->data + r->pos)) + 1;
  PyObject* out = PyBytes_FromStringAndSize(r->data + r->pos, static_cast<Py_ssize_t>(take));
  if (out != nullptr) r->pos += take;
  return out;
}

// peek(n=0): a memoryview of ALL remaining bytes (peek may return more than asked).
// _pickle.Unpickler then parses from that buffer without further calls.
PyObject* RecordReader_peek(PyObject* self, PyObject* const* /*args*/, Py_ssize_t /*nargs*/) {
  auto* r = reinterpret_cast<RecordReaderObject*>(self);
  PyRef mv = PyRef::steal(PyMemoryView_FromObject(r->buffer));
  if (!mv || r->pos == 0) return mv.release();
  PyRef start = PyRef::steal(PyLong_FromSize_t(r->pos));
  PyRef slice = PyRef::steal(PySlice_New(start.get(), nullptr, nullptr));
  if (!slice) return nullptr;
  return PyObject_GetItem(mv.get(), slice.get());
}

PyObject* RecordReader_readinto(PyObject* self, PyObject* target) {
  auto* r = reinterpret_cast<RecordReaderObject*>(self);
  Py_buffer view;
  if (PyObject_GetBuffer(target, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return nullptr;
  size_t take = std::min(Remaining(r), static_cast<size_t>(view.len));
  std::memcpy(view.buf, r->data + r->pos, take);
  r->pos += take;
  PyBuffer_Release(&view);
  return PyLong_FromSize_t(take);
}

int RecordReader_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(reinterpret_cast<RecordReaderObject*>(self)->buffer);
  return 0;
}

int RecordReader_clear(PyObject* self) {
  Py_CLEAR(reinterpret_cast<RecordReaderObject*>(self)->buffer);
  return 0;
}

void RecordReader_dealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  RecordReader_clear(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyMethodDef record_reader_methods[] = {
    {"read", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(RecordReader_read)),
     METH_FASTCALL, nullptr},
    {"readline", RecordReader_readline, METH_NOARGS, nullptr},
    {"peek", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(RecordReader_peek)),
     METH_FASTCALL, nullptr},
    {"readinto", RecordReader_readinto, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot record_reader_slots[] = {
    {Py_tp_methods, record_reader_methods},
    {Py_tp_traverse, reinterpret_cast<void*>(RecordReader_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(RecordReader_clear)},
    {Py_tp_dealloc, reinterpret_cast<void*>(RecordReader_dealloc)},
    {0, nullptr},
};

PyType_Spec record_reader_spec = {
    "pyfleet._RecordReader", sizeof(RecordReaderObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION |
        Py_TPFLAGS_IMMUTABLETYPE,
    record_reader_slots};

// The exception zip_reader.get_record raises for a record that is not there.
PyObject* RaiseMissing(PackageImporterObject* self, std::string_view name) {
  PyRef n = PyRef::steal(PyUnicode_FromStringAndSize(name.data(), static_cast<Py_ssize_t>(name.size())));
  if (!n) return nullptr;
  if (self->is_directory) {
    // DirectoryReader: open(f"{self.directory}/{name}", "rb").
    PyRef path = PyRef::steal(PyUnicode_FromFormat("%U/%U", self->filename, n.get()));
    if (!path) return nullptr;
    PyRef exc = PyRef::steal(PyObject_CallFunction(PyExc_FileNotFoundError, "isO", 2,
                                                   "No such file or directory", path.get()));
    if (exc) PyErr_SetObject(PyExc_FileNotFoundError, exc.get());
    return nullptr;
  }
  PyErr_Format(PyExc_RuntimeError, "PytorchStreamReader failed locating file %U: file not found",
               n.get());
  return nullptr;
}

// Reads record `name` of `archive` (the importer's, or a snapshot of it) into *view.
// 0, or -1 with the exception set.
int ReadView(PackageImporterObject* self, const PyfleetArchive* archive, std::string_view name,
             PyfleetRecordView* view) {
  if (archive->ctx == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "PackageImporter.__init__() was not called");
    return -1;
  }
  std::string key(name);
  int64_t index = archive->find(archive->ctx, key.c_str());
  if (index < 0) {
    RaiseMissing(self, name);
    return -1;
  }
  PyfleetStatus* status = archive->read(archive->ctx, static_cast<size_t>(index), view);
  if (status != nullptr) {
    RaiseArchiveStatus(self, status);
    return -1;
  }
  return 0;
}

}  // namespace

int64_t FindRecord(PackageImporterObject* self, std::string_view name) {
  if (self->archive.ctx == nullptr) return -1;
  std::string key(name);
  return self->archive.find(self->archive.ctx, key.c_str());
}

int HasRecord(PackageImporterObject* self, std::string_view name) {
  return FindRecord(self, name) >= 0 ? 1 : 0;
}

PyObject* ReadRecordBuffer(PackageImporterObject* self, std::string_view name) {
  return ReadRecordBufferFrom(self, &self->archive, name);
}

PyObject* ReadRecordBufferFrom(PackageImporterObject* self, const PyfleetArchive* archive,
                               std::string_view name) {
  ImporterState* st = StateOf(reinterpret_cast<PyObject*>(self));
  PyfleetRecordView view{};
  if (ReadView(self, archive, name, &view) < 0) return nullptr;
  auto* tp = reinterpret_cast<PyTypeObject*>(st->record_buffer_type);
  auto* rb = PyObject_New(RecordBufferObject, tp);
  if (rb == nullptr) {
    view.release(view.owner);
    return nullptr;
  }
  rb->view = view;
  return reinterpret_cast<PyObject*>(rb);
}

PyObject* ReadRecordBytes(PackageImporterObject* self, std::string_view name) {
  PyfleetRecordView view{};
  if (ReadView(self, &self->archive, name, &view) < 0) return nullptr;
  PyObject* out = PyBytes_FromStringAndSize(static_cast<const char*>(view.data),
                                            static_cast<Py_ssize_t>(view.size));
  view.release(view.owner);
  return out;
}

const char* RecordBufferData(PyObject* buffer, size_t* size) {
  auto* rb = reinterpret_cast<RecordBufferObject*>(buffer);
  *size = rb->view.size;
  return static_cast<const char*>(rb->view.data);
}

PyfleetRecordView TakeRecordView(PyObject* buffer) {
  auto* rb = reinterpret_cast<RecordBufferObject*>(buffer);
  PyfleetRecordView view = rb->view;
  rb->view = PyfleetRecordView{};
  return view;
}

PyObject* NewRecordReader(ImporterState* st, PyObject* buffer) {
  auto* tp = reinterpret_cast<PyTypeObject*>(st->record_reader_type);
  auto* r = PyObject_GC_New(RecordReaderObject, tp);
  if (r == nullptr) return nullptr;
  Py_INCREF(buffer);
  r->buffer = buffer;
  r->data = RecordBufferData(buffer, &r->size);
  r->pos = 0;
  PyObject_GC_Track(r);
  return reinterpret_cast<PyObject*>(r);
}

int OpenLoadArchive(PackageImporterObject* self, PyfleetArchive* out) {
  const PackageArchive* archive = ArchiveFromAbi(&self->archive);
  if (archive == nullptr) {
    // An archive the host opened (another library copy): the ABI has no snapshot
    // entry yet, so this load shares the archive's mapping.
    self->archive.retain(self->archive.ctx);
    *out = self->archive;
    return 0;
  }
  absl::StatusOr<std::shared_ptr<PackageArchive>> snap = archive->snapshot();
  if (!snap.ok()) {
    std::string msg(snap.status().message());
    PyErr_SetString(PyExc_RuntimeError, msg.c_str());
    return -1;
  }
  *out = MakeArchiveAbi(*std::move(snap));
  return 0;
}

PyObject* RecordList(PackageImporterObject* self) {
  PyRef list = PyRef::steal(PyList_New(static_cast<Py_ssize_t>(self->records->size())));
  if (!list) return nullptr;
  for (size_t i = 0; i < self->records->size(); ++i) {
    const std::string& n = (*self->records)[i];
    PyObject* s = PyUnicode_DecodeUTF8(n.data(), static_cast<Py_ssize_t>(n.size()), "surrogateescape");
    if (s == nullptr) return nullptr;
    PyList_SET_ITEM(list.get(), static_cast<Py_ssize_t>(i), s);  // steals s
  }
  return list.release();
}

PyObject* GetZipReader(PackageImporterObject* self) {
  if (self->zip_reader != nullptr) return Py_NewRef(self->zip_reader);
  ImporterState* st = StateOf(reinterpret_cast<PyObject*>(self));
  if (EnsureTorch(st) < 0) return nullptr;
  PyObject* reader = nullptr;
  if (self->is_directory) {
    reader = PyObject_CallOneArg(st->directory_reader, self->filename);
  } else if (self->source != nullptr) {
    // Rewind the file object to where it was when we got it, as torch's BufferAdapter
    // takes tell() as the archive's start.
    PyRef r = PyRef::steal(PyObject_CallMethod(self->source, "seek", "O", self->source_start));
    if (!r) return nullptr;
    reader = PyObject_CallOneArg(st->file_reader_type, self->source);
  } else if (PyUnicode_CompareWithASCIIString(self->filename, "<binary>") == 0) {
    PyErr_SetString(PyExc_RuntimeError,
                    "this package was handed over as bytes without a file: torch's "
                    "PyTorchFileReader (zip_reader, needed for TorchScript) cannot open it");
    return nullptr;
  } else {
    reader = PyObject_CallOneArg(st->file_reader_type, self->filename);
  }
  if (reader == nullptr) return nullptr;
  self->zip_reader = Py_NewRef(reader);
  return reader;
}

int AddRecordTypes(PyObject* module, ImporterState* st) {
  st->record_buffer_type = PyType_FromModuleAndSpec(module, &record_buffer_spec, nullptr);
  if (st->record_buffer_type == nullptr) return -1;
  st->record_reader_type = PyType_FromModuleAndSpec(module, &record_reader_spec, nullptr);
  return st->record_reader_type == nullptr ? -1 : 0;
}

}  // namespace pyfleet::internal
