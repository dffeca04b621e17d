// File: archive_abi.h
//
// Wraps a PackageArchive as the C ABI's PyfleetArchive (interpreter_abi.h), the form in
// which every interpreter's importer sees an archive, whoever opened it.
//
//   PyfleetArchive abi = MakeArchiveAbi(archive);     // holds one reference
//   PyfleetRecordView view;
//   PyfleetStatus* s = abi.read(abi.ctx, 0, &view);   // NULL on success
//   ... view.data, view.size ...
//   view.release(view.owner);
//   abi.release(abi.ctx);                             // drop our reference
//
// The table is GIL-free and thread-safe (PackageArchive is). The archive lives until
// the last retain is released and the last record view is released. Every callback is
// noexcept and reports failures by return value (read: RESOURCE_EXHAUSTED when memory
// runs out, INTERNAL for any other C++ exception; find: -1), because the importer calls
// them from inside CPython frames.
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "pyfleet/interpreter_abi.h"
#include "interpreter/archive/package_archive.h"

namespace pyfleet::internal {

// A PyfleetArchive holding one reference (release it with archive.release(archive.ctx)).
PyfleetArchive MakeArchiveAbi(std::shared_ptr<const PackageArchive> archive);

// The PackageArchive behind `archive` if MakeArchiveAbi made it (same library copy),
// else nullptr. Borrowed: valid while `archive` holds its reference.
const PackageArchive* ArchiveFromAbi(const PyfleetArchive* archive);

}  // namespace pyfleet::internal
