// File: package_registry.h
//
// The process-wide registry behind Note [One archive per file per process]
// (pyfleet/package.h): the archive open now for a file, if any, else a new one.
//
//   PYFLEET_ASSIGN_OR_RETURN(std::shared_ptr<const PackageArchive> a, OpenSharedArchive(path));
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace pyfleet::internal {

class PackageArchive;

// The archive of the file (or unzipped package folder) at `path`: the one already open
// in this process for the same file (device, inode, size and mtime), else a newly
// opened one. Errors are PackageArchive::Open's, with the path. Thread-safe.
absl::StatusOr<std::shared_ptr<const PackageArchive>> OpenSharedArchive(const std::string& path);

}  // namespace pyfleet::internal
