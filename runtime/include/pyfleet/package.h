// File: package.h
//
// pyfleet::Package: a torch.package archive opened ONCE per process and shared by
// every interpreter. Stored records (tensor storages above all) are served from one
// mapping of the file, so a weight loaded in N interpreters occupies memory once.
//
//   pyfleet::Package package = pyfleet::Package::open("resnet.pt");
//   pyfleet::Obj importer = interp->packageImporter(package);
//   pyfleet::Obj model = importer.attr("load_pickle")({"model", "model.pkl"});
//
// Note [Shared weights and in-place writes]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The mapping is private and writable (copy-on-write): a write never reaches the file,
// and an in-place op on a loaded weight works instead of faulting. Because every
// interpreter's importer of one Package sees the same mapping, such a write is visible
// to every load of that record in the process, in every interpreter, from then on (the
// pages written become private to the process). Models that mutate weights in place
// (BatchNorm statistics in train mode, `p.add_()`) should load with
// `load_pickle(..., copy_storages=True)`, which gives that load private copies.
#pragma once

#include <memory>
#include <string>

#include "pyfleet/export.h"

namespace pyfleet {

namespace internal {
class PackageArchive;
struct Access;
}  // namespace internal

class PYFLEET_API Package {
 public:
  // Package::open()
  //
  // Opens and indexes the archive at `path` (torch.package ZIP, ZIP64 too). Throws
  // pyfleet::Error: NOT_FOUND for a missing file, DATA_LOSS or INVALID_ARGUMENT for a
  // corrupt or truncated archive, with the path and what is wrong.
  static Package open(const std::string& path);

  // The path it was opened from.
  const std::string& path() const;
  // Number of records.
  size_t recordCount() const;

 private:
  friend struct internal::Access;
  explicit Package(std::shared_ptr<const internal::PackageArchive> archive) : archive_(std::move(archive)) {}
  std::shared_ptr<const internal::PackageArchive> archive_;
};

}  // namespace pyfleet
