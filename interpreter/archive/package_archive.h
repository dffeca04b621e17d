// File: package_archive.h
//
// A torch.package archive opened once per file per process and shared, read-only and
// thread-safe, by every interpreter: the ZIP is indexed once (libarchive, cross-checked
// with the central directory), stored records are served as views of ONE private
// mapping of a sealed in-memory copy of the file (Note [Package files may change on
// disk] in loader/base/mapped_file.h; zero copy from there on: tensor storages alias
// it), deflated records are inflated into private buffers.
//
//   absl::StatusOr<std::shared_ptr<PackageArchive>> archive =
//       PackageArchive::Open("/models/resnet.pt");
//   if (!archive.ok()) return archive.status();
//   absl::StatusOr<RecordData> pkl = (*archive)->read("model/model.pkl");
//   if (pkl.ok()) Unpickle(pkl->data(), pkl->size());
//
// Record names are those torch's PyTorchFileReader.get_all_records() gives: without
// the archive's top-level folder (`resnet/.data/0.storage` is ".data/0.storage"), in
// central-directory order. An archive can also be opened from bytes in memory, or from
// a directory laid out like an unzipped package (torch's DirectoryReader).
//
// Errors: where torch 1.13's PyTorchFileReader raises, the message is exactly its
// text (e.g. "PytorchStreamReader failed reading zip archive: failed finding central
// directory"); elsewhere the message names the archive and the record. Codes:
// NotFound (missing file or record), InvalidArgument (not a torch.package archive,
// unsafe record names), DataLoss (truncated/corrupt data, CRC mismatch, lying sizes),
// FailedPrecondition (unsupported .data/version), Unimplemented (method, encryption).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/status/statusor.h"
#include "loader/base/mapped_file.h"

namespace pyfleet::internal {

// Bytes of one record. For a stored record `data()` points into the archive's mapping
// (and `owner` keeps that mapping alive); otherwise into a private buffer it owns.
// Cheap to copy; valid as long as any copy lives, independently of the archive.
class RecordData {
 public:
  RecordData() = default;
  RecordData(const uint8_t* data, size_t size, std::shared_ptr<const void> owner,
             bool aliases_archive)
      : data_(data), size_(size), owner_(std::move(owner)), aliases_archive_(aliases_archive) {}
  // Writable: see Note [Copy-on-write mapping].
  uint8_t* data() const { return const_cast<uint8_t*>(data_); }
  size_t size() const { return size_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  // True if the bytes alias the archive's shared mapping (a stored ZIP record).
  bool aliasesArchive() const { return aliases_archive_; }
  const std::shared_ptr<const void>& owner() const { return owner_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> owner_;
  bool aliases_archive_ = false;
};

enum class RecordMethod : uint8_t { kStored, kDeflated, kFile /* directory archive */ };

struct RecordInfo {
  std::string name;             // without the top-level folder
  RecordMethod method = RecordMethod::kStored;
  uint64_t size = 0;            // declared (uncompressed) size
  uint64_t compressed_size = 0; // ZIP only
  uint64_t data_offset = 0;     // ZIP only: offset of the data in the mapping
  uint32_t crc32 = 0;           // ZIP only
  std::string unsupported;      // ZIP only: why the record cannot be read, if it cannot
};

// Note [Who sees an in-place write to a loaded weight]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The one statement of this behaviour; every other mention points here.
// Storages load zero-copy: a loaded tensor's bytes are a view of a MAP_PRIVATE,
// writable mapping of the package file's sealed copy (Notes [Copy-on-write mapping] and
// [Package files may change on disk] in loader/base/mapped_file.h). An in-place op on a loaded weight (`p.add_(1)`, BatchNorm
// statistics in train mode) copies the pages it touches into that mapping. The file,
// and other processes, never see a write. Within the process, who sees it depends on
// whose mapping the load used:
//   * A package the HOST opened (pyfleet::Package, InterpreterManager::loadPackage) has
//     one mapping, shared by every interpreter's importer of it: that is how N
//     interpreters hold one copy of the weights. A write is seen by every load of that
//     record through that Package, in every interpreter, from then on (a
//     ReplicatedObj's copies included). A Package opened anew after the last one of that
//     file is gone maps the file again and reads the original bytes.
//   * An importer that opened the archive ITSELF (the standalone Python
//     `pyfleet.PackageImporter(path)`) maps the file once more per load_pickle
//     (snapshot(), below: more page tables, no more memory until a write): a write is
//     seen only by tensors of that same load, the isolation torch's copying importer
//     gives.
//   * `load_pickle(..., copy_storages=True)` gives that load private copies, whatever
//     the importer: what a model that mutates its weights should use with a host
//     Package.

// Note [Lazy CRC verification]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// torch 1.13 reads packages with miniz built WITHOUT CRC checks; we do check. A
// deflated record is checked every time it is inflated (it is copied anyway). A stored
// record is checked ONCE per archive, on its first read, before any view of it is
// handed out; the verdict is cached (an atomic per record), so later reads, in any
// interpreter, are pure pointer arithmetic. Checking at open would fault in and hash
// the whole file (~100 ms for ResNet-50) even for records never read; checking on
// every read would hash the weights on every load. The bytes are hashed as the FILE
// holds them (pread through a 1 MB buffer, MappedFile::fileCrc32), not through the
// mapping: that neither maps nor faults in the pages (~half the cost of a first
// check, and no RSS growth until the weights are used). Because the check precedes the
// first view, a later in-place write to a loaded tensor (Note [Copy-on-write
// mapping]) can never make a record fail its check. Archives opened with a
// CrcVerdictCache also share verdicts across archives of the same unchanged file (each
// has its own fresh mapping of it), so a record is hashed once per file per process.

// Note [Pinned packages]
// ~~~~~~~~~~~~~~~~~~~~~~
// A caller that knows which package it means to run pins it by the SHA-256 of the whole
// archive file (pyfleet::PackageOptions::sha256, `PackageImporter(path, sha256=...)`;
// `pyfleet-inspect --sha256 PACKAGE` prints the digest to pin). verifySha256() hashes
// the bytes of the open file the mapping was made from (its fd, never the path again:
// a file renamed over the path after the open cannot slip in), by pread() through a
// buffer like the CRC check, so hashing a 100 MB package faults in no page of the
// mapping. The digest is computed ONCE per archive and cached (shared with snapshots):
// a pinned load of a file that the process already has open (the registry behind Note
// [One archive per file per process] in pyfleet/package.h) is still verified, against
// the cached digest, without reading the file again. A mismatch is PermissionDenied and
// happens before the pinned caller gets any record. The bytes hashed are the archive's
// sealed in-memory copy of the file, the very bytes it serves (Note [Package files may
// change on disk] in loader/base/mapped_file.h), so a later write to the file in place
// changes nothing that was verified. Keep pinned packages read-only to everyone but
// their owner all the same.

// The payload (absl::Status::SetPayload type URL) a SHA-256 mismatch carries: the
// digest the file has. It tells a mismatch from other PermissionDenied errors of an open
// (a file the process may not read).
inline constexpr char kSha256MismatchPayload[] = "pyfleet/sha256_mismatch";

// Remembers which stored records passed their CRC check, by file identity (device,
// inode, size, mtime, ctime) and data offset, so that archives opened later on the same
// unchanged file skip the check (see Note [Lazy CRC verification]). Thread-safe. Owned
// by whoever opens archives (the host's manager, the `pyfleet` module state); it must
// outlive every archive opened with it.
class CrcVerdictCache {
 public:
  bool verified(const FileIdentity& file, uint64_t data_offset) const;
  void markVerified(const FileIdentity& file, uint64_t data_offset);

 private:
  using Key = std::tuple<uint64_t, uint64_t, uint64_t, int64_t, int64_t, uint64_t>;
  static Key MakeKey(const FileIdentity& f, uint64_t offset) {
    return Key{f.dev, f.ino, f.size, f.mtime_ns, f.ctime_ns, offset};
  }
  mutable absl::Mutex mu_;
  absl::flat_hash_set<Key> verified_ ABSL_GUARDED_BY(mu_);
};

class PackageArchive : public std::enable_shared_from_this<PackageArchive> {
 public:
  enum class Kind : uint8_t { kZip, kDirectory };

  // Opens and indexes the ZIP file at `path`. Validates what PyTorchFileReader's
  // constructor validates (a top-level folder, a supported .data/version or version
  // record) plus: every record inside that folder, no ".." components or absolute
  // names, stored sizes that match, data inside the file.
  // `crc_cache` (optional, borrowed) shares CRC verdicts with other archives of the
  // same file. A non-empty `sha256` pins the file (Note [Pinned packages]): it is hashed
  // right after it is mapped, BEFORE any of its bytes are parsed, and a mismatch fails
  // the open as verifySha256() does (PermissionDenied; InvalidArgument for a malformed
  // digest); the digest is then cached as sha256() would.
  static absl::StatusOr<std::shared_ptr<PackageArchive>> Open(
      const std::string& path, CrcVerdictCache* crc_cache = nullptr, std::string_view sha256 = {});

  // Same, over a private copy of `size` bytes (a package read from a stream).
  // `display_name` is what path() and messages say ("<binary>" like torch).
  static absl::StatusOr<std::shared_ptr<PackageArchive>> OpenBytes(
      const void* data, size_t size, const std::string& display_name = "<binary>",
      std::string_view sha256 = {});

  // Opens a directory laid out like an unzipped package (torch's DirectoryReader):
  // every regular file below it, named relative to it. No version check (torch does
  // none); records are listed in directory-walk order and read with one private
  // mapping per read.
  static absl::StatusOr<std::shared_ptr<PackageArchive>> OpenDirectory(const std::string& dir);

  PackageArchive(const PackageArchive&) = delete;
  PackageArchive& operator=(const PackageArchive&) = delete;
  ~PackageArchive();

  Kind kind() const { return kind_; }
  // The path it was opened from, or the display name of an in-memory archive.
  const std::string& path() const { return path_; }
  // ZIP: the top-level folder ("resnet"); directory: "".
  const std::string& archiveName() const { return archive_name_; }
  // ZIP: the parsed .data/version (or version) record; directory: 0.
  uint64_t version() const { return version_; }

  size_t recordCount() const { return shared_->records.size(); }
  const RecordInfo& record(size_t index) const { return shared_->records[index]; }
  // Index of the record named `name`, if any (first one if a name repeats).
  std::optional<size_t> find(std::string_view name) const;

  // Reads record `index`. Thread-safe. OutOfRange for a bad index; DataLoss for CRC
  // or size mismatches ("<path>: record '<name>': ..."); Unimplemented for records
  // that are encrypted or use another method than stored/deflate.
  absl::StatusOr<RecordData> read(size_t index) const;
  // Reads the record named `name`; a missing one is NotFound with torch's text
  // "PytorchStreamReader failed locating file <name>: file not found".
  absl::StatusOr<RecordData> read(std::string_view name) const;

  // PackageArchive::sha256()
  //
  // SHA-256 of the archive file (of the bytes given to OpenBytes), as 64 lowercase hex
  // digits; computed on first call by pread()ing the open file, then cached for this
  // archive and its snapshots (Note [Pinned packages]). Thread-safe: concurrent first
  // calls hash once. FailedPrecondition for a directory archive (it is no one file).
  absl::StatusOr<std::string> sha256() const;

  // PackageArchive::verifySha256()
  //
  // OK if the archive's sha256() equals `expected` (64 hex digits, either case).
  // InvalidArgument if `expected` is not that; PermissionDenied on a mismatch, with both
  // digests: "<path>: SHA-256 mismatch: expected <hex>, the file has <hex>", and the
  // file's digest as payload kSha256MismatchPayload.
  absl::Status verifySha256(std::string_view expected) const;

  // ZIP: the mapping every stored record lies in (for tests and diagnostics).
  const MappedFile* mapping() const { return mapping_.get(); }
  // How many stored records this archive (not its snapshots) hashed so far.
  uint64_t crcChecks() const { return crc_checks_.load(std::memory_order_relaxed); }

  // A snapshot for one load: the same archive (index, CRC verdicts, names) over a
  // FRESH private mapping of the same file, so writes through its views stay private
  // to that load. See Note [Who sees an in-place write to a loaded weight]. ZIP only (a directory archive maps
  // each read separately anyway: it returns itself). Thread-safe.
  absl::StatusOr<std::shared_ptr<PackageArchive>> snapshot() const;

 private:
  PackageArchive(Kind kind, std::string path) : kind_(kind), path_(std::move(path)) {}
  static absl::StatusOr<std::shared_ptr<PackageArchive>> OpenZip(
      std::shared_ptr<MappedFile> mapping, std::string path, std::string_view sha256);
  absl::Status indexZip();           // package_archive_zip.cpp
  absl::Status crossCheckWithLibarchive(const std::vector<size_t>& stored) const;
  absl::Status checkVersion();
  absl::Status indexDirectory();     // package_archive_dir.cpp
  absl::StatusOr<RecordData> readZip(size_t index) const;
  absl::StatusOr<RecordData> readFile(size_t index) const;
  void buildLookup();

  const Kind kind_;
  const std::string path_;
  std::string archive_name_;
  uint64_t version_ = 0;
  std::shared_ptr<MappedFile> mapping_;  // ZIP only
  CrcVerdictCache* crc_cache_ = nullptr;  // borrowed, may be null
  mutable std::atomic<uint64_t> crc_checks_{0};
  // The index, shared with snapshots (immutable after open but for CRC verdicts).
  struct Shared {
    std::vector<RecordInfo> records;
    absl::flat_hash_map<std::string, size_t> by_name;
    // Per stored record: 0 unchecked, 1 CRC ok, 2 CRC bad. See Note [Lazy CRC verification].
    std::unique_ptr<std::atomic<uint8_t>[]> crc_state;
    // The file's SHA-256, once computed (Note [Pinned packages]).
    absl::Mutex sha256_mu;
    std::string sha256 ABSL_GUARDED_BY(sha256_mu);
  };
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

}  // namespace pyfleet::internal
