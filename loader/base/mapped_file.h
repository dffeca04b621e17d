// File: mapped_file.h
//
// One private mapping of a whole file (or of anonymous memory holding bytes that were
// handed to us), owned by a MappedFile, which also keeps the file open; the destructor
// unmaps and closes. The one mapping type of every layer: the loader reads ELF files
// through read-only ones, package archives serve records from copy-on-write ones.
//
//   absl::StatusOr<std::shared_ptr<MappedFile>> m = MappedFile::Map("/models/demo.pt");
//   if (m.ok()) Use((*m)->data(), (*m)->size());
//   auto elf = MappedFile::Map("/usr/lib/libz.so.1", MappedFile::Access::kReadOnly);
//
// Every mapping is MAP_PRIVATE. kCopyOnWrite ones (the default) are also writable; see
// Note [Copy-on-write mapping] below: writes through them never reach the file.
// Package archives map a sealed in-memory copy of their file instead (CopyOfFile): see
// Note [Package files may change on disk].
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "loader/base/owned_fd.h"

namespace pyfleet::internal {

// Note [Copy-on-write mapping]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Tensor storages loaded from a package alias a mapping of the archive (zero copy).
// Every kCopyOnWrite mapping is MAP_PRIVATE and writable: an in-place op on a loaded
// weight copies the touched page into that mapping and never writes the file; a
// read-only mapping would turn such an op into a SIGSEGV. Who else sees such a write:
// Note [Who sees an in-place write to a loaded weight] in
// interpreter/archive/package_archive.h. Stored records' CRCs are verified before the
// first view of a record is handed out (Note [Lazy CRC verification] there), so no such
// write can make a later check fail.

// Note [Package files may change on disk]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// What pyfleet guarantees: a package archive (pyfleet::Package, an importer's
// PackageArchive::Open) serves the bytes its file had when it was opened, whatever
// happens to the file afterwards, and never turns a change into a signal:
//   * deleted, or renamed over (`mv new.pt model.pt`, the recommended way to deploy):
//     safe under any mapping, the open file keeps the old inode;
//   * truncated, or rewritten in place (`cp other.pt model.pt` opens with O_TRUNC;
//     pwrite over it): a MAP_PRIVATE mapping of the FILE would fault with SIGBUS on a
//     page past the new end (the kernel drops truncated pages from private mappings
//     too) and would show rewritten bytes in pages not yet copied on write, i.e. in the
//     weights being served. So an archive never maps the file itself: CopyOfFile()
//     copies it, in the kernel (copy_file_range, else sendfile, else pread/write),
//     into a memfd that is then sealed against writes, shrinking and growing, and maps
//     that privately (/proc/self/maps: "/memfd:pyfleet-package:<real path> (deleted)").
//     The copy is the archive's file from then on: fd(), fileCrc32() and remap()
//     (snapshots) use it, so CRC and SHA-256 checks hash exactly the bytes
//     that are served. A file that changes size or timestamps WHILE it is being copied
//     is DATA_LOSS ("changed while it was being read"); opening it again reads the new
//     contents. Loading the path again after a change opens the new file.
// The price: the copy is shared memory (RssShmem, swappable but not evictable like
// page cache) the size of the package, and a kernel copy of the file at open
// (benchmarks/soak/package_file_costs.cpp measures it against the alternatives).
// Rejected: mapping the file and checking fstat() before reads (a
// truncation between the check and the read is still SIGBUS, and a same-size rewrite
// is not seen at all); privatizing every page up front (MADV_POPULATE_WRITE: the same
// memory, as anonymous pages, and remap() would read the new file). Tested in
// tests/faults/package_file_test.cpp. The loader's ELF files are mapped directly
// (Map()): they are read once, while a library is copied.

// What identifies a file's content without reading it: a file with the same device,
// inode, size, mtime and ctime is taken to be unchanged.
struct FileIdentity {
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  bool valid = false;  // false for anonymous mappings
  bool operator==(const FileIdentity& o) const {
    return valid && o.valid && dev == o.dev && ino == o.ino && size == o.size &&
           mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns;
  }
};

class MappedFile {
 public:
  enum class Access {
    kReadOnly,     // PROT_READ: reading only (ELF files); a write faults
    kCopyOnWrite,  // PROT_READ|PROT_WRITE, MAP_PRIVATE: see Note [Copy-on-write mapping]
  };

  // MappedFile::Map()
  //
  // Maps the whole file at `path`. Errors (PosixError, with the path): NOT_FOUND,
  // PERMISSION_DENIED, ...; INVALID_ARGUMENT for a directory. A zero-length file yields
  // a MappedFile with size() == 0 and data() == nullptr.
  static absl::StatusOr<std::shared_ptr<MappedFile>> Map(const std::string& path,
                                                         Access access = Access::kCopyOnWrite);

  // Copies `size` bytes into a memory file (memfd) and maps that privately (page
  // aligned, so any alignment the bytes had relative to their start is kept).
  static absl::StatusOr<std::shared_ptr<MappedFile>> Copy(const void* data, size_t size);

  // MappedFile::CopyOfFile()
  //
  // Copies the whole file at `path` into a sealed memfd and maps that (kCopyOnWrite):
  // see Note [Package files may change on disk]. identity() is the file's, as opened;
  // fd() is the copy. Errors as Map(), plus DATA_LOSS if the file changed while it was
  // being copied.
  static absl::StatusOr<std::shared_ptr<MappedFile>> CopyOfFile(const std::string& path);

  // A new private mapping of the same file with the same access (a fresh copy-on-write
  // view; the page cache pages are shared, nothing is copied). Same identity.
  absl::StatusOr<std::shared_ptr<MappedFile>> remap() const;

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // The bytes. Writable only for Access::kCopyOnWrite.
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  absl::string_view bytes() const { return absl::string_view(reinterpret_cast<const char*>(data_), size_); }
  // The open file that was mapped (owned by this object), e.g. to dup() and keep the very
  // bytes that were mapped even if the path is replaced on disk.
  int fd() const { return fd_.get(); }
  // True if [p, p + n) lies inside this mapping.
  bool contains(const void* p, size_t n) const;
  // The mapped file's identity (invalid for Copy()).
  const FileIdentity& identity() const { return identity_; }

  // CRC-32 (zlib's) of bytes [offset, offset + size) of the FILE, read with pread()
  // through a small buffer rather than through the mapping: hashing a 100 MB record
  // this way neither faults in nor maps its pages (no RSS growth, no page-table
  // cost), it only reads the page cache. Thread-safe. Internal on an I/O error.
  absl::StatusOr<uint32_t> fileCrc32(uint64_t offset, size_t size) const;

 private:
  MappedFile(uint8_t* data, size_t size, OwnedFd fd, Access access)
      : data_(data), size_(size), fd_(std::move(fd)), access_(access) {}
  // Opens `path` for reading and takes its identity; INVALID_ARGUMENT for a directory.
  static absl::StatusOr<OwnedFd> OpenForMapping(const std::string& path, FileIdentity* id);
  // Maps `fd` privately; the result owns `fd` (closed on error too). `what` names it.
  static absl::StatusOr<std::shared_ptr<MappedFile>> MapFd(OwnedFd fd, size_t size, Access access,
                                                          const FileIdentity& id,
                                                          const std::string& what);
  uint8_t* data_;  // owned mapping (nullptr when size_ == 0)
  size_t size_;
  OwnedFd fd_;  // the mapped file, kept open for remap() and fileCrc32()
  Access access_;
  FileIdentity identity_;
};

}  // namespace pyfleet::internal
