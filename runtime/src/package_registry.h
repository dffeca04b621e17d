// File: package_registry.h
//
// The process-wide registry behind Note [One archive per file per process]
// (pyfleet/package.h): the archive open now for a file, if any, else a new one.
//
//   PYFLEET_ASSIGN_OR_RETURN(std::shared_ptr<const PackageArchive> a, OpenSharedArchive(path));
//   PYFLEET_ASSIGN_OR_RETURN(auto pinned, OpenSharedArchive(path, "b95a4bb2...e379"));
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pyfleet::internal {

class PackageArchive;

// The archive of the file (or unzipped package folder) at `path`: the one already open
// in this process for the same file (device, inode, size and mtime), else a newly
// opened one. Errors are PackageArchive::Open's, with the path. Thread-safe.
//
// A non-empty `sha256` pins the file (pyfleet::PackageOptions::sha256): the archive is
// returned only if its digest is that one, whether it was open already (checked against
// its cached digest: Note [Pinned packages] in interpreter/archive/package_archive.h) or
// not; else PermissionDenied (InvalidArgument for a malformed digest). The hashing runs
// outside the registry's lock.
absl::StatusOr<std::shared_ptr<const PackageArchive>> OpenSharedArchive(const std::string& path,
                                                                        std::string_view sha256 = {});

}  // namespace pyfleet::internal
