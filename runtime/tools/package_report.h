// File: package_report.h
//
// What pyfleet-inspect prints about a torch.package archive: the file tree exactly as
// PackageImporter.file_structure(include=..., exclude=...) prints it, the format version,
// the python version, the extern modules, the storages and, for each pickle, the modules
// its globals come from. As text or as one JSON object.
//
//   absl::StatusOr<std::shared_ptr<PackageArchive>> a = PackageArchive::Open(path);
//   absl::StatusOr<GlobGroup> globs = GlobGroup::Create({"**"}, {}, '/');
//   absl::StatusOr<PackageReport> r = BuildPackageReport(**a, path, *globs);
//   if (r.ok()) std::cout << ReportText(*r);
//
// Include/exclude filter the tree and `files` only; the other fields describe the whole
// package. Pickles are the records named *.pkl. For an unzipped (directory) package the
// tree and `files` leave out names with a component starting with '.', as torch's
// DirectoryReader does (its glob("**") skips them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "interpreter/archive/package_archive.h"
#include "runtime/tools/glob_group.h"

namespace pyfleet::internal {

struct PickleReport {
  std::string record;
  std::vector<std::string> modules;  // sorted, unique
  std::string error;                 // non-empty if the pickle could not be walked
};

struct PackageReport {
  std::string tree;                  // str(file_structure(...)), newline-terminated
  std::vector<std::string> files;    // records passing the globs, archive order
  std::string version;               // .data/version as written, stripped ("6")
  std::optional<std::string> python_version;  // None if .data/python_version is absent
  std::vector<std::string> extern_modules;    // in file order
  uint64_t storage_count = 0;
  uint64_t storage_bytes = 0;
  std::vector<PickleReport> pickles;          // archive order
};

// BuildPackageReport()
//
// Reads the metadata records and every *.pkl record of `archive`. `display_name` heads
// the tree (torch uses the path as given). Fails with the archive's status if a needed
// record cannot be read (e.g. NotFound for a missing .data/extern_modules, DataLoss for
// a CRC mismatch); a pickle that cannot be walked is reported in its PickleReport::error.
absl::StatusOr<PackageReport> BuildPackageReport(const PackageArchive& archive,
                                                 const std::string& display_name,
                                                 const GlobGroup& globs);

// The report as text: the tree, then one "key: value" section per field.
std::string ReportText(const PackageReport& report);

// The report as one JSON object with keys files, tree, version, python_version,
// extern_modules, storages {count, bytes}, pickles {record: [modules]} and
// pickle_errors {record: message}. Strings are UTF-8; invalid bytes become U+FFFD.
std::string ReportJson(const PackageReport& report);

}  // namespace pyfleet::internal
