// File: zip_directory.h
//
// Reads a ZIP's central directory (ZIP64 included) from memory: for each entry its
// full name, compression method, flags, CRC-32, sizes and where its data starts. This
// is the part of the index libarchive does not expose (CRC, method, offsets of
// deflated data); PackageArchive cross-checks it against libarchive's own reading.
//
//   absl::StatusOr<std::vector<ZipEntry>> entries = ReadZipDirectory(data, size);
//   for (const ZipEntry& e : *entries) printf("%s %llu\n", e.name.c_str(), e.size);
//
// Errors are absl::Status with miniz's wording (that is what torch users see, e.g.
// "failed finding central directory"); the caller adds the archive's name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pyfleet::internal {

inline constexpr uint16_t kZipMethodStored = 0;
inline constexpr uint16_t kZipMethodDeflated = 8;

struct ZipEntry {
  std::string name;           // full name, as stored (including the top-level folder)
  uint16_t flags = 0;         // general purpose bit flags (bit 0: encrypted)
  uint16_t method = 0;        // kZipMethodStored, kZipMethodDeflated or unsupported
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;          // uncompressed size, as declared
  uint64_t header_offset = 0; // local file header
  uint64_t data_offset = 0;   // first byte of the (compressed) data
};

// Parses the central directory and every local header of the ZIP in [data, data+size),
// in central-directory order (the order PyTorchFileReader lists records in).
// Errors (message text in quotes):
//   InvalidArgument "not a ZIP archive"                  - shorter than an end record
//   InvalidArgument "failed finding central directory"   - no end record (truncated)
//   DataLoss        "invalid header or archive is corrupted: <detail>"
//   Unimplemented   "unsupported multidisk archive"
// Entries whose data would extend past the end are DataLoss naming the entry.
absl::StatusOr<std::vector<ZipEntry>> ReadZipDirectory(const uint8_t* data, size_t size);

}  // namespace pyfleet::internal
