// File: zip_directory.cpp — see zip_directory.h.
//
// Layout references: PKWARE APPNOTE 6.3 sections 4.3.7 (local header), 4.3.12 (central
// directory header), 4.3.14-16 (ZIP64 end records) and 4.5.3 (ZIP64 extra field).
#include "interpreter/archive/zip_directory.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pyfleet::internal {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEndSize = 22;
constexpr size_t kZip64EndSize = 56;
constexpr size_t kZip64LocatorSize = 20;
constexpr uint16_t kZip64ExtraId = 0x0001;

uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t Le64(const uint8_t* p) {
  return static_cast<uint64_t>(Le32(p)) | (static_cast<uint64_t>(Le32(p + 4)) << 32);
}

absl::Status Corrupted(const std::string& detail) {
  return absl::DataLossError(absl::StrCat("invalid header or archive is corrupted: ", detail));
}

// True if [offset, offset + n) fits in a buffer of `size` bytes.
bool Fits(uint64_t offset, uint64_t n, size_t size) {
  return offset <= size && n <= size - offset;
}

struct EndRecord {
  uint64_t entries = 0;
  uint64_t cd_size = 0;
  uint64_t cd_offset = 0;
};

absl::StatusOr<EndRecord> FindEnd(const uint8_t* data, size_t size) {
  if (size < kEndSize) return absl::InvalidArgumentError("not a ZIP archive");
  // The end record sits within the last 22 + 65535 (comment) bytes.
  size_t lowest = size > kEndSize + 0xffff ? size - kEndSize - 0xffff : 0;
  size_t pos = size - kEndSize;
  for (;; --pos) {
    if (Le32(data + pos) == kEndSig) break;
    if (pos == lowest) return absl::InvalidArgumentError("failed finding central directory");
  }
  const uint8_t* e = data + pos;
  if (Le16(e + 4) != 0 || Le16(e + 6) != 0 || Le16(e + 8) != Le16(e + 10)) {
    return absl::UnimplementedError("unsupported multidisk archive");
  }
  EndRecord end{Le16(e + 10), Le32(e + 12), Le32(e + 16)};
  bool wants64 = end.entries == 0xffff || end.cd_size == 0xffffffff ||
                 end.cd_offset == 0xffffffff;
  if (pos >= kZip64LocatorSize && Le32(data + pos - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint8_t* loc = data + pos - kZip64LocatorSize;
    uint64_t end64_offset = Le64(loc + 8);
    if (Le32(loc + 16) > 1) return absl::UnimplementedError("unsupported multidisk archive");
    if (!Fits(end64_offset, kZip64EndSize, size) || Le32(data + end64_offset) != kZip64EndSig) {
      return Corrupted("bad ZIP64 end of central directory record");
    }
    const uint8_t* e64 = data + end64_offset;
    if (Le32(e64 + 16) != 0 || Le32(e64 + 20) != 0) {
      return absl::UnimplementedError("unsupported multidisk archive");
    }
    end = EndRecord{Le64(e64 + 32), Le64(e64 + 40), Le64(e64 + 48)};
  } else if (wants64) {
    return Corrupted("ZIP64 end of central directory locator missing");
  }
  if (!Fits(end.cd_offset, end.cd_size, size)) {
    return Corrupted("central directory extends beyond the end of the file");
  }
  return end;
}

// Applies a ZIP64 extended-information extra field to the 0xffffffff fields of `entry`.
absl::Status ApplyZip64Extra(const uint8_t* extra, size_t extra_len, bool need_size,
                             bool need_csize, bool need_offset, ZipEntry& entry) {
  size_t pos = 0;
  while (pos + 4 <= extra_len) {
    uint16_t id = Le16(extra + pos);
    uint16_t len = Le16(extra + pos + 2);
    if (pos + 4 + len > extra_len) break;
    if (id == kZip64ExtraId) {
      const uint8_t* f = extra + pos + 4;
      size_t need = 8 * (need_size + need_csize + need_offset);
      if (len < need) return Corrupted(absl::StrCat("short ZIP64 extra field for ", entry.name));
      if (need_size) entry.size = Le64(f), f += 8;
      if (need_csize) entry.compressed_size = Le64(f), f += 8;
      if (need_offset) entry.header_offset = Le64(f), f += 8;
      return absl::OkStatus();
    }
    pos += 4 + len;
  }
  if (need_size || need_csize || need_offset) {
    return Corrupted(absl::StrCat("missing ZIP64 extra field for ", entry.name));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ZipEntry>> ReadZipDirectory(const uint8_t* data, size_t size) {
  absl::StatusOr<EndRecord> end = FindEnd(data, size);
  if (!end.ok()) return end.status();
  // Each central header takes at least 46 bytes: bound the count before reserving.
  if (end->entries > end->cd_size / kCentralHeaderSize) {
    return Corrupted("central directory entry count exceeds its size");
  }
  std::vector<ZipEntry> entries;
  entries.reserve(end->entries);
  uint64_t pos = end->cd_offset;
  uint64_t cd_end = end->cd_offset + end->cd_size;
  for (uint64_t i = 0; i < end->entries; ++i) {
    if (!Fits(pos, kCentralHeaderSize, cd_end) || Le32(data + pos) != kCentralHeaderSig) {
      return Corrupted(absl::StrCat("bad central directory header #", i));
    }
    const uint8_t* h = data + pos;
    ZipEntry entry;
    entry.flags = Le16(h + 8);
    entry.method = Le16(h + 10);
    entry.crc32 = Le32(h + 16);
    entry.compressed_size = Le32(h + 20);
    entry.size = Le32(h + 24);
    uint16_t name_len = Le16(h + 28);
    uint16_t extra_len = Le16(h + 30);
    uint16_t comment_len = Le16(h + 32);
    entry.header_offset = Le32(h + 42);
    uint64_t total = kCentralHeaderSize + uint64_t{name_len} + extra_len + comment_len;
    if (!Fits(pos, total, cd_end)) {
      return Corrupted(absl::StrCat("central directory header #", i, " is truncated"));
    }
    entry.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_len);
    absl::Status st = ApplyZip64Extra(h + kCentralHeaderSize + name_len, extra_len,
                                      entry.size == 0xffffffff,
                                      entry.compressed_size == 0xffffffff,
                                      entry.header_offset == 0xffffffff, entry);
    if (!st.ok()) return st;
    pos += total;

    // The local header says where the data starts (its name and extra field lengths
    // may differ from the central copy: torch pads the local extra field).
    if (!Fits(entry.header_offset, kLocalHeaderSize, size) ||
        Le32(data + entry.header_offset) != kLocalHeaderSig) {
      return Corrupted(absl::StrCat("bad local header for ", entry.name));
    }
    const uint8_t* lh = data + entry.header_offset;
    entry.data_offset = entry.header_offset + kLocalHeaderSize + Le16(lh + 26) + Le16(lh + 28);
    if (!Fits(entry.data_offset, entry.compressed_size, size)) {
      return absl::DataLossError(absl::StrCat("record ", entry.name, " (", entry.compressed_size,
                                              " bytes at offset ", entry.data_offset,
                                              ") extends beyond the end of the archive (",
                                              size, " bytes)"));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace pyfleet::internal
