// File: errors.cpp
//
// Turning archive statuses and import failures into the exceptions torch.package
// raises. A ZIP archive's failures are RuntimeError, as torch's PyTorchFileReader
// raises them (c10::Error -> RuntimeError); an unzipped package's missing file is
// FileNotFoundError, as DirectoryReader's open() raises it.
//
//   PyfleetStatus* s = archive.read(archive.ctx, index, &view);
//   if (s != nullptr) return RaiseArchiveStatus(self, s);
#include <cstdlib>

#include "interpreter/importer/importer_state.h"
#include "interpreter/importer/py_ref.h"
#include "loader/base/pyfleet_status.h"

namespace pyfleet::internal {

PyObject* RaiseArchiveStatus(PackageImporterObject* self, PyfleetStatus* status) {
  const char* msg = status->message != nullptr ? status->message : "archive error";
  if (self != nullptr && self->is_directory && status->code == PYFLEET_NOT_FOUND) {
    PyErr_SetString(PyExc_FileNotFoundError, msg);
  } else {
    PyErr_SetString(PyExc_RuntimeError, msg);
  }
  FreePyfleetStatus(status);
  return nullptr;
}

PyObject* RaiseImportError(PyObject* type, PyObject* msg, PyObject* name) {
  PyRef kwargs = PyRef::steal(Py_BuildValue("{sO}", "name", name ? name : Py_None));
  PyRef args = PyRef::steal(PyTuple_Pack(1, msg));
  if (!kwargs || !args) return nullptr;
  PyRef exc = PyRef::steal(PyObject_Call(type, args.get(), kwargs.get()));
  if (exc) PyErr_SetObject(type, exc.get());
  return nullptr;
}

}  // namespace pyfleet::internal
