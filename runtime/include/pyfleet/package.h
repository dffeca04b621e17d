// File: package.h
//
// pyfleet::Package: a torch.package archive opened ONCE per process and shared by
// every interpreter. Stored records (tensor storages above all) are served from one
// mapping of the file, so a weight loaded in N interpreters occupies memory once.
//
//   pyfleet::Package package = manager.loadPackage("resnet.pt");
//   pyfleet::ReplicatedObj model = package.loadPickle("model", "model.pkl");
//   std::string notes = package.loadText("model", "notes.txt");
//
//   pyfleet::Package p = pyfleet::Package::open("resnet.pt");   // no manager: the
//   pyfleet::Obj importer = interp->packageImporter(p);           // low-level API
//
//   // Pinned: refused (PERMISSION_DENIED) unless the file's SHA-256 is this one
//   // (`pyfleet-inspect --sha256 resnet.pt` prints it).
//   pyfleet::Package pinned = manager.loadPackage("resnet.pt", {.sha256 = "b95a4bb2...e379"});
//   // Safe unpickling: only torch.load(weights_only=True)'s globals and the listed ones.
//   pyfleet::ReplicatedObj sd = pinned.loadPickle("model", "weights.pkl", {.safe = true});
//
// Note [One archive per file per process]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// InterpreterManager::loadPackage shares a process-wide registry of the archives open
// now, keyed by the file's identity (device, inode, size, mtime): the same file loaded
// twice, under any path, by any manager, is one archive and one mapping, as long as one
// Package of it is alive. A file replaced on disk is a new file. Package::open, the
// low-level way in, always opens an archive of its own.
//
// In-place writes to loaded weights never reach the file, and every later load of the
// same Package in the process (any interpreter) sees them: models that mutate their
// weights load with `load_pickle(..., copy_storages=True)`. The full statement: Note
// [Who sees an in-place write to a loaded weight] in interpreter/archive/package_archive.h.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pyfleet/export.h"
#include "pyfleet/interpreter_session.h"
#include "pyfleet/obj.h"
#include "pyfleet/replicated_obj.h"

namespace pyfleet {

namespace internal {
class ManagerState;
class PackageArchive;
struct Access;
}  // namespace internal

// How a package is opened (Package::open, InterpreterManager::loadPackage).
struct PackageOptions {
  // PackageOptions::sha256
  //
  // Integrity pinning: the SHA-256 of the whole archive file, 64 hex digits (either
  // case); `pyfleet-inspect --sha256 PACKAGE` or `sha256sum` prints it. If the file's
  // digest differs, opening throws pyfleet::Error PERMISSION_DENIED ("<path>: SHA-256
  // mismatch: expected <hex>, the file has <hex>") before the caller gets anything of
  // the package; a malformed digest is INVALID_ARGUMENT. The file is hashed once per
  // open archive, by pread() (no page of the mapping is touched), and the digest is
  // cached with the archive: a pinned load of a file the process already has open is
  // checked against it without reading the file again. About 65 ms for a 100 MB package
  // in the page cache. Empty: not pinned. See Note [Pinned packages] in
  // interpreter/archive/package_archive.h for what it does not cover.
  std::string sha256;
};

// How Package::loadPickle unpickles.
struct LoadOptions {
  // LoadOptions::safe
  //
  // Safe unpickling: the pickle may reference only the globals torch.load(weights_only=
  // True) allows in torch 1.13.1 (tensors, storages, dtypes, torch.Size, Parameter,
  // OrderedDict: a state_dict), builtins.set and builtins.frozenset (data: how pickle
  // protocol 3 spells a set) and those in `allowed_globals`. Any other global, before
  // its module is imported, fails the load: pyfleet::Error PERMISSION_DENIED,
  // pythonType() "pyfleet.GlobalDenied" (a pickle.UnpicklingError), naming the global.
  bool safe = false;
  // LoadOptions::allowed_globals
  //
  // More globals a safe load accepts (non-empty implies `safe`): "module.name" (one
  // global; "module.Outer.Inner" for a nested class), "module.*" (every global of the
  // module), "package.**" (of the package and its submodules). The package's own classes
  // are not allowed unless listed: unpickling one runs its code.
  std::vector<std::string> allowed_globals;
};

class PYFLEET_API Package {
 public:
  // Package::open()
  //
  // Opens and indexes the archive at `path` (torch.package ZIP, ZIP64 too), a new
  // archive of its own (see the Note; InterpreterManager::loadPackage shares). Throws
  // pyfleet::Error: NOT_FOUND for a missing file, DATA_LOSS or INVALID_ARGUMENT for a
  // corrupt or truncated archive, with the path and what is wrong; PERMISSION_DENIED if
  // `options.sha256` pins another digest (PackageOptions).
  static Package open(const std::string& path);
  static Package open(const std::string& path, const PackageOptions& options);

  // The path it was opened from.
  const std::string& path() const;
  // Number of records.
  size_t recordCount() const;

  // The calls below need a package from InterpreterManager::loadPackage (one from
  // Package::open has no interpreters: FAILED_PRECONDITION).

  // Package::loadPickle()
  //
  // The object `importer.load_pickle(module, file)` gives, replicated: each interpreter
  // loads its copy from the archive on first use, its storages aliasing the one mapping.
  // The first load happens here, so a missing record or a bad pickle fails now.
  ReplicatedObj loadPickle(const std::string& module, const std::string& file);
  // The same, unpickled as `options` says (every interpreter's copy alike).
  ReplicatedObj loadPickle(const std::string& module, const std::string& file, const LoadOptions& options);

  // Package::loadText() / loadBinary()
  //
  // `importer.load_text(module, file)` / `load_binary(...)`: a resource's text (UTF-8)
  // or bytes.
  std::string loadText(const std::string& module, const std::string& file);
  std::string loadBinary(const std::string& module, const std::string& file);

  // Package::acquireSession()
  //
  // A session on a free interpreter whose `self` is this package's importer there.
  InterpreterSession acquireSession();

  // Package::createMovable()
  //
  // As InterpreterManager::createMovable; objects of this package's code replicate.
  ReplicatedObj createMovable(Obj obj, InterpreterSession* session);

 private:
  friend struct internal::Access;
  Package(std::shared_ptr<const internal::PackageArchive> archive, std::shared_ptr<internal::ManagerState> manager)
      : archive_(std::move(archive)), manager_(std::move(manager)) {}
  internal::ManagerState& manager(const char* operation) const;

  std::shared_ptr<const internal::PackageArchive> archive_;
  std::shared_ptr<internal::ManagerState> manager_;  // null for Package::open
};

}  // namespace pyfleet
