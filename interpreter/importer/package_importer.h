/* File: package_importer.h
 *
 * The C++ torch.package importer as a CPython extension module named `pyfleet`: a
 * built-in module (inittab) of every pyfleet interpreter, and an extension module for
 * Debian's python3 (<build>/python/pyfleet*.so).
 *
 *   PyObject* imp = PyfleetPackageImporter_FromArchive(&archive);  // GIL held
 *   if (imp == NULL) return NULL;                                  // exception set
 *   PyObject* model = PyObject_CallMethod(imp, "load_pickle", "ss", "model", "model.pkl");
 *
 * From Python it is a drop-in replacement for torch.package.PackageImporter (torch
 * 1.13.1): `pyfleet.PackageImporter("m.pt").load_pickle("model", "model.pkl")`.
 */
#pragma once

#include <Python.h>

#include "pyfleet/interpreter_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Module `pyfleet` (PEP 489 multi-phase init): the PackageImporter type and helpers. */
PyMODINIT_FUNC PyInit_pyfleet(void);

/* New reference to a pyfleet.PackageImporter over `archive` (the importer retains it;
 * the caller keeps its own reference). Requires the GIL. NULL + exception on error. */
PyObject* PyfleetPackageImporter_FromArchive(const PyfleetArchive* archive);

/* Note [Storages that outlive their interpreter]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * load_pickle makes each storage a zero-copy tensor over a record view of the archive.
 * torch.frombuffer would do, but the storage it makes holds the Python buffer object and
 * its deleter takes the GIL of the interpreter that made it (pybind11
 * gil_scoped_acquire + Py_DECREF, no check that the interpreter is alive). The host
 * routinely holds such storages past that interpreter's finalize (a result's autograd
 * graph keeps the weights; createMovable shares storages between interpreters), and
 * releasing one then takes a GIL that no longer exists: SIGSEGV in PyThreadState_New.
 * So a pyfleet interpreter installs a factory (tensor_bridge.cpp) that builds the
 * tensor in C++ over a storage whose deleter only releases the record view (GIL-free,
 * thread-safe: archive_abi.h); no Python object is involved. Without a factory (the
 * module in Debian's python3, where the interpreter outlives every tensor) torch.frombuffer
 * is used. Tested in tests/faults/teardown_test.cpp. */
#ifdef __cplusplus
}

namespace pyfleet::internal {

// A new reference to a 1-D torch.uint8 tensor of `nbytes` bytes (<= view.size) over
// `view.data`, whose storage owns `view` (released whatever the outcome); NULL with an
// exception on failure. Requires the GIL.
using RecordTensorFactory = PyObject* (*)(PyfleetRecordView view, size_t nbytes);

// Installs the factory load_pickle makes storages with, for this copy of the module
// (Note [Storages that outlive their interpreter]). Call before the interpreter starts.
void SetRecordTensorFactory(RecordTensorFactory factory);

}  // namespace pyfleet::internal
#endif
