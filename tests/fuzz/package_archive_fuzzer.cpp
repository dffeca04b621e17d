// File: package_archive_fuzzer.cpp
//
// libFuzzer target: PackageArchive over arbitrary bytes (OpenBytes: the index, the
// central directory reader zip_directory.cpp, the libarchive cross-check, the version
// check), then every record read twice (the second read takes the cached CRC verdict),
// by index and by name, and once more through a snapshot(). Only the statuses
// package_archive.h documents are accepted; every record read must hand back exactly
// its declared size, hash to its CRC-32, and, if stored, lie inside the mapping.
//
//   scripts/fuzz package_archive_fuzzer 60
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "interpreter/archive/package_archive.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using absl::StatusCode;
using pyfleet::internal::PackageArchive;
using pyfleet::internal::RecordData;
using pyfleet::internal::RecordInfo;
using pyfleet::internal::RecordMethod;

uint32_t Crc32(const uint8_t* data, size_t size) {
  return static_cast<uint32_t>(crc32_z(crc32_z(0, nullptr, 0), data, size));
}

// Reads record `i` of `a`; returns whether it read (with the contract checked).
bool CheckedRead(const PackageArchive& a, size_t i) {
  const RecordInfo& r = a.record(i);
  absl::StatusOr<RecordData> d = a.read(i);
  if (!d.ok()) {
    PYFLEET_FUZZ_EXPECT_CODE(d.status(), "PackageArchive::read", StatusCode::kDataLoss,
                             StatusCode::kUnimplemented, StatusCode::kResourceExhausted);
    return false;
  }
  PYFLEET_FUZZ_CHECK(d->size() == r.size, absl::StrCat("record '", r.name, "' size"));
  PYFLEET_FUZZ_CHECK(d->size() == 0 || d->data() != nullptr, "null data");
  // Touches every byte (ASan checks the range) and checks what the CRC check promised.
  PYFLEET_FUZZ_CHECK(Crc32(d->data(), d->size()) == r.crc32,
                     absl::StrCat("record '", r.name, "' read OK but does not match its CRC"));
  if (r.method == RecordMethod::kStored) {
    PYFLEET_FUZZ_CHECK(d->aliasesArchive(), "stored record does not alias the archive");
    PYFLEET_FUZZ_CHECK(a.mapping()->contains(d->data(), d->size()),
                       "stored record outside the mapping");
  } else {
    PYFLEET_FUZZ_CHECK(!d->aliasesArchive(), "inflated record claims to alias the archive");
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<std::shared_ptr<PackageArchive>> opened =
      PackageArchive::OpenBytes(data, size, "fuzz.pt");
  if (!opened.ok()) {
    PYFLEET_FUZZ_EXPECT_CODE(opened.status(), "PackageArchive::OpenBytes",
                             StatusCode::kInvalidArgument, StatusCode::kDataLoss,
                             StatusCode::kFailedPrecondition, StatusCode::kUnimplemented);
    return 0;
  }
  const PackageArchive& a = **opened;
  PYFLEET_FUZZ_CHECK(a.recordCount() > 0, "an open archive has records");
  PYFLEET_FUZZ_CHECK(a.version() >= 1 && a.version() <= 10, "version outside torch's range");
  PYFLEET_FUZZ_CHECK(!a.archiveName().empty(), "empty top-level folder");
  for (size_t i = 0; i < a.recordCount(); ++i) {
    const RecordInfo& r = a.record(i);
    std::optional<size_t> found = a.find(r.name);
    PYFLEET_FUZZ_CHECK(found.has_value() && a.record(*found).name == r.name, "find(name)");
    const bool first = CheckedRead(a, i);
    PYFLEET_FUZZ_CHECK(CheckedRead(a, i) == first, "a second read of a record changed its verdict");
    if (*found == i) {
      absl::StatusOr<RecordData> by_name = a.read(r.name);
      PYFLEET_FUZZ_CHECK(by_name.ok() == first, "read(name) differs from read(index)");
    }
  }
  PYFLEET_FUZZ_CHECK(a.read(a.recordCount()).status().code() == StatusCode::kOutOfRange,
                     "read past the last record");
  PYFLEET_FUZZ_CHECK(a.read(std::string_view("\x01no such record")).status().code() ==
                         StatusCode::kNotFound,
                     "read of a missing name");

  absl::StatusOr<std::shared_ptr<PackageArchive>> snap = a.snapshot();
  PYFLEET_FUZZ_CHECK(snap.ok(), "snapshot of an in-memory archive");
  PYFLEET_FUZZ_CHECK((*snap)->recordCount() == a.recordCount(), "snapshot record count");
  for (size_t i = 0; i < (*snap)->recordCount(); ++i) CheckedRead(**snap, i);
  return 0;
}
