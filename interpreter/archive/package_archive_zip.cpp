// File: package_archive_zip.cpp — the ZIP side of PackageArchive: index (central
// directory + libarchive cross-check), name validation, reads and CRC checks.
#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "interpreter/archive/package_archive.h"
#include "interpreter/archive/record_inflate.h"
#include "interpreter/archive/zip_directory.h"

namespace pyfleet::internal {
namespace {

// The prefix torch puts on every message about the archive as a whole.
constexpr const char kZipFailed[] = "PytorchStreamReader failed reading zip archive: ";

// True if `name` (relative to the top-level folder) is absolute or has a ".."
// component (with '/' or '\\' as separator).
bool IsUnsafeName(std::string_view name) {
  if (name.empty()) return false;
  if (name.front() == '/' || name.front() == '\\') return true;
  if (name.find('\0') != std::string_view::npos) return true;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find_first_of("/\\", start);
    if (end == std::string_view::npos) end = name.size();
    if (name.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

uint32_t Crc32(const uint8_t* data, size_t size) {
  return static_cast<uint32_t>(crc32_z(crc32_z(0, nullptr, 0), data, size));
}

}  // namespace

absl::Status PackageArchive::indexZip() {
  absl::StatusOr<std::vector<ZipEntry>> entries =
      ReadZipDirectory(mapping_->data(), mapping_->size());
  if (!entries.ok()) {
    absl::string_view msg = entries.status().message();
    if (msg == "not a ZIP archive" || msg == "failed finding central directory") {
      return absl::Status(entries.status().code(), absl::StrCat(kZipFailed, msg));
    }
    return absl::Status(entries.status().code(),
                        absl::StrCat(kZipFailed, msg, " (archive ", path_, ")"));
  }
  if (entries->empty()) {
    return absl::InvalidArgumentError(
        "[enforce fail at inline_container.cc:120] . archive does not contain any files");
  }
  // The top-level folder, as PyTorchStreamReader::init() finds it: the first record's
  // name up to its first '/'.
  const std::string& first = entries->front().name;
  size_t slash = first.find('/');
  if (slash == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "[enforce fail at inline_container.cc:129] . file in archive is not in a "
        "subdirectory: ", first));
  }
  archive_name_ = first.substr(0, slash);
  const std::string prefix = archive_name_ + "/";

  shared_->records.reserve(entries->size());
  std::vector<size_t> stored;
  for (ZipEntry& e : *entries) {
    if (e.name.compare(0, prefix.size(), prefix) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[enforce fail at inline_container.cc:252] . file in archive is not in a "
          "subdirectory ", prefix, ": ", e.name));
    }
    RecordInfo r;
    r.name = e.name.substr(prefix.size());
    if (IsUnsafeName(r.name) || archive_name_.empty() || IsUnsafeName(archive_name_)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": record '", e.name,
                       "' has an unsafe name (an absolute path or a '..' component)"));
    }
    r.size = e.size;
    r.compressed_size = e.compressed_size;
    r.data_offset = e.data_offset;
    r.crc32 = e.crc32;
    if (e.flags & 1) {
      r.unsupported = "unsupported encryption";
    } else if (e.method == kZipMethodStored) {
      r.method = RecordMethod::kStored;
      if (e.compressed_size != e.size) {
        return absl::DataLossError(absl::StrCat(
            path_, ": record '", r.name, "': declared size lies: stored record has ",
            e.compressed_size, " bytes of data but declares ", e.size));
      }
      if (e.size > 0) stored.push_back(shared_->records.size());
    } else if (e.method == kZipMethodDeflated) {
      r.method = RecordMethod::kDeflated;
      if (e.size > e.compressed_size * kMaxDeflateRatio + 1024) {
        return absl::DataLossError(absl::StrCat(
            path_, ": record '", r.name, "': declared size lies: ", e.compressed_size,
            " deflated bytes cannot inflate to the declared ", e.size, " bytes"));
      }
    } else {
      r.unsupported = "unsupported method";
    }
    shared_->records.push_back(std::move(r));
  }
  absl::Status st = crossCheckWithLibarchive(stored);
  if (!st.ok()) return st;
  shared_->crc_state.reset(new std::atomic<uint8_t>[shared_->records.size()]);
  for (size_t i = 0; i < shared_->records.size(); ++i) shared_->crc_state[i].store(0, std::memory_order_relaxed);
  buildLookup();
  return absl::OkStatus();
}

// Reads the archive once with libarchive (ZIP seekable reader over the mapping) and
// checks that it sees the same records and, for every stored record, hands back a
// pointer into the mapping at exactly the data offset the central directory gives.
// libarchive's own CRC pass is switched off here; see Note [Lazy CRC verification].
absl::Status PackageArchive::crossCheckWithLibarchive(const std::vector<size_t>& stored) const {
  archive* a = archive_read_new();
  if (a == nullptr) return absl::ResourceExhaustedError("archive_read_new failed");
  absl::Cleanup freer = [a] { archive_read_free(a); };
  archive_read_support_format_zip_seekable(a);
  archive_read_set_format_option(a, "zip", "ignorecrc32", "1");
  auto fail = [&](const std::string& what) {
    const char* err = archive_error_string(a);
    return absl::DataLossError(absl::StrCat(kZipFailed, "invalid header or archive is corrupted: ",
                                            what, ": ", err ? err : "libarchive error",
                                            " (archive ", path_, ")"));
  };
  if (archive_read_open_memory(a, mapping_->data(), mapping_->size()) != ARCHIVE_OK) {
    return fail("libarchive cannot open it");
  }
  // Stored records by data offset, to match libarchive's entries (it walks them in
  // offset order, the central directory may not).
  absl::flat_hash_map<uint64_t, size_t> stored_at;
  absl::flat_hash_map<std::string, size_t> stored_names;
  for (size_t i : stored) {
    stored_at.emplace(shared_->records[i].data_offset, i);
    stored_names.emplace(absl::StrCat(archive_name_, "/", shared_->records[i].name), i);
  }
  size_t seen = 0;
  size_t stored_seen = 0;
  archive_entry* entry = nullptr;
  while (true) {
    int rc = archive_read_next_header(a, &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) return fail(absl::StrCat("reading header #", seen));
    ++seen;
    if (!archive_entry_size_is_set(entry) || archive_entry_size(entry) <= 0) continue;
    const char* name = archive_entry_pathname(entry);
    absl::string_view full = name ? name : "";
    const void* block = nullptr;
    size_t block_size = 0;
    la_int64_t block_offset = 0;
    // Deflated (and unsupported) records are not inflated here: they are checked when
    // read. Only stored data lies in the mapping.
    if (!stored_names.contains(full)) continue;
    rc = archive_read_data_block(a, &block, &block_size, &block_offset);
    if (rc < ARCHIVE_WARN) return fail(absl::StrCat("reading ", full));
    if (!mapping_->contains(block, block_size)) {
      return absl::DataLossError(absl::StrCat(
          kZipFailed, "invalid header or archive is corrupted: libarchive does not read '", full,
          "' as a stored record (archive ", path_, ")"));
    }
    uint64_t offset = static_cast<const uint8_t*>(block) - mapping_->data();
    auto it = stored_at.find(offset);
    if (it == stored_at.end() ||
        absl::StrCat(archive_name_, "/", shared_->records[it->second].name) != full ||
        static_cast<uint64_t>(archive_entry_size(entry)) != shared_->records[it->second].size) {
      return absl::DataLossError(absl::StrCat(
          kZipFailed, "invalid header or archive is corrupted: libarchive finds '", full,
          "' at offset ", offset, " where the central directory has no such stored record",
          " (archive ", path_, ")"));
    }
    ++stored_seen;
  }
  if (seen != shared_->records.size() || stored_seen != stored.size()) {
    return absl::DataLossError(absl::StrCat(
        kZipFailed, "invalid header or archive is corrupted: libarchive reads ", seen,
        " records (", stored_seen, " stored) where the central directory lists ",
        shared_->records.size(), " (", stored.size(), " stored) (archive ", path_, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RecordData> PackageArchive::readZip(size_t index) const {
  const RecordInfo& r = shared_->records[index];
  if (!r.unsupported.empty()) {
    return absl::UnimplementedError(
        absl::StrCat("PytorchStreamReader failed reading file ", r.name, ": ", r.unsupported));
  }
  const uint8_t* data = mapping_->data() == nullptr ? nullptr : mapping_->data() + r.data_offset;
  if (r.method == RecordMethod::kStored) {
    // See Note [Lazy CRC verification].
    uint8_t state = shared_->crc_state[index].load(std::memory_order_acquire);
    if (state == 0) {
      if (crc_cache_ != nullptr && crc_cache_->verified(mapping_->identity(), r.data_offset)) {
        state = 1;
      } else {
        crc_checks_.fetch_add(1, std::memory_order_relaxed);
        absl::StatusOr<uint32_t> crc = mapping_->fileCrc32(r.data_offset, r.size);
        if (!crc.ok()) {
          return absl::Status(crc.status().code(), absl::StrCat(path_, ": record '", r.name,
                                                                "': ", crc.status().message()));
        }
        state = *crc == r.crc32 ? 1 : 2;
        if (state == 1 && crc_cache_ != nullptr) {
          crc_cache_->markVerified(mapping_->identity(), r.data_offset);
        }
      }
      shared_->crc_state[index].store(state, std::memory_order_release);
    }
    if (state != 1) {
      return absl::DataLossError(absl::StrFormat(
          "%s: record '%s': CRC-32 check failed (stored data does not match its CRC "
          "0x%08x)", path_, r.name, r.crc32));
    }
    // The view shares ownership of the mapping, not of the archive.
    return RecordData(data, r.size, std::shared_ptr<const void>(mapping_, mapping_.get()),
                      /*aliases_archive=*/true);
  }
  absl::StatusOr<std::shared_ptr<AlignedBuffer>> out =
      InflateRecord(data, r.compressed_size, r.size);
  if (!out.ok()) {
    return absl::Status(out.status().code(), absl::StrCat(path_, ": record '", r.name,
                                                          "': ", out.status().message()));
  }
  uint32_t crc = Crc32((*out)->data(), (*out)->size());
  if (crc != r.crc32) {
    return absl::DataLossError(absl::StrFormat(
        "%s: record '%s': CRC-32 check failed (inflated data has CRC 0x%08x, expected "
        "0x%08x)", path_, r.name, crc, r.crc32));
  }
  const uint8_t* bytes = (*out)->data();
  size_t size = (*out)->size();
  return RecordData(bytes, size, std::shared_ptr<const void>(*std::move(out)),
                    /*aliases_archive=*/false);
}

}  // namespace pyfleet::internal
