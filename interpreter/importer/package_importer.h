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

#ifdef __cplusplus
}
#endif
