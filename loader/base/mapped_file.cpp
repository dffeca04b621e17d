// File: mapped_file.cpp — see mapped_file.h.
#include "loader/base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "loader/base/posix_error.h"

namespace pyfleet::internal {

namespace {

FileIdentity IdentityOf(const struct stat& st) {
  FileIdentity id;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = static_cast<uint64_t>(st.st_size);
  id.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  id.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
  id.valid = true;
  return id;
}

// Copies `size` bytes of `src` (from offset 0) to the start of the empty `dst`. Returns
// how many bytes were copied: fewer than `size` only if `src` ended early.
absl::StatusOr<size_t> CopyFileBytes(int src, int dst, size_t size) {
  size_t done = 0;
  enum { kCopyFileRange, kSendfile, kReadWrite } how = kCopyFileRange;
  std::unique_ptr<char[]> buf;
  while (done < size) {
    const size_t want = std::min<size_t>(size - done, size_t{1} << 30);
    ssize_t n = -1;
    if (how == kCopyFileRange) {
      loff_t in = static_cast<loff_t>(done), out = static_cast<loff_t>(done);
      n = ::copy_file_range(src, &in, dst, &out, want, 0);
      // Not between these file systems (EXDEV before 5.3 and after 5.19), or unsupported.
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        how = kSendfile;
        continue;
      }
    } else if (how == kSendfile) {
      off_t in = static_cast<off_t>(done);
      if (::lseek(dst, static_cast<off_t>(done), SEEK_SET) < 0) return PosixError(errno, "lseek memfd");
      n = ::sendfile(dst, src, &in, want);
      if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
        how = kReadWrite;
        continue;
      }
    } else {
      if (!buf) buf.reset(new char[size_t{1} << 20]);
      n = ::pread(src, buf.get(), std::min<size_t>(want, size_t{1} << 20), static_cast<off_t>(done));
      if (n > 0) {
        for (ssize_t written = 0; written < n;) {
          ssize_t w = ::pwrite(dst, buf.get() + written, static_cast<size_t>(n - written),
                               static_cast<off_t>(done) + written);
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) return PosixError(errno, "write memfd");
          written += w;
        }
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, "copy to memfd");
    if (n == 0) break;  // the file ended early
    done += static_cast<size_t>(n);
  }
  return done;
}

}  // namespace

absl::StatusOr<OwnedFd> MappedFile::OpenForMapping(const std::string& path, FileIdentity* id) {
  OwnedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return PosixError(errno, absl::StrCat("open ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return PosixError(errno, absl::StrCat("fstat ", path));
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is a directory"));
  }
  *id = IdentityOf(st);
  return fd;
}

absl::StatusOr<std::shared_ptr<MappedFile>> MappedFile::Map(const std::string& path, Access access) {
  FileIdentity id;
  absl::StatusOr<OwnedFd> fd = OpenForMapping(path, &id);
  if (!fd.ok()) return fd.status();
  return MapFd(*std::move(fd), static_cast<size_t>(id.size), access, id, path);
}

// See Note [Package files may change on disk].
absl::StatusOr<std::shared_ptr<MappedFile>> MappedFile::CopyOfFile(const std::string& path) {
  FileIdentity id;
  absl::StatusOr<OwnedFd> file = OpenForMapping(path, &id);
  if (!file.ok()) return file.status();
  // Named after the file, so /proc/self/maps says what the copy is of.
  std::string name = "pyfleet-package:";
  if (char* real = ::realpath(path.c_str(), nullptr)) {
    name += real;
    std::free(real);
  } else {
    name += path;
  }
  name.resize(std::min<size_t>(name.size(), 249));  // memfd_create's limit
  OwnedFd mem(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!mem.valid()) return PosixError(errno, absl::StrCat("memfd_create for ", path));
  const size_t size = static_cast<size_t>(id.size);
  absl::StatusOr<size_t> copied = CopyFileBytes(file->get(), mem.get(), size);
  if (!copied.ok()) return absl::Status(copied.status().code(), absl::StrCat(path, ": ", copied.status().message()));
  struct stat after;
  if (::fstat(file->get(), &after) != 0) return PosixError(errno, absl::StrCat("fstat ", path));
  if (*copied != size || !(IdentityOf(after) == id)) {
    return absl::DataLossError(absl::StrCat(path, ": the file changed while it was being read (", *copied, " of ",
                                            size, " bytes copied); replace package files by rename"));
  }
  if (::fcntl(mem.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    return PosixError(errno, absl::StrCat("sealing the copy of ", path));
  }
  return MapFd(std::move(mem), size, Access::kCopyOnWrite, id, path);
}

absl::StatusOr<std::shared_ptr<MappedFile>> MappedFile::MapFd(OwnedFd fd, size_t size, Access access,
                                                             const FileIdentity& id,
                                                             const std::string& what) {
  void* p = nullptr;
  if (size > 0) {
    // See Note [Copy-on-write mapping].
    const int prot = access == Access::kReadOnly ? PROT_READ : PROT_READ | PROT_WRITE;
    p = ::mmap(nullptr, size, prot, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) return PosixError(errno, absl::StrCat("mmap ", what));
  }
  std::shared_ptr<MappedFile> m(new MappedFile(static_cast<uint8_t*>(p), size, std::move(fd), access));
  m->identity_ = id;
  return m;
}

absl::StatusOr<std::shared_ptr<MappedFile>> MappedFile::Copy(const void* data, size_t size) {
  OwnedFd fd(static_cast<int>(::syscall(SYS_memfd_create, "pyfleet-archive", 1u /*MFD_CLOEXEC*/)));
  if (!fd.valid()) return PosixError(errno, "memfd_create");
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    ssize_t n = ::write(fd.get(), p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return PosixError(errno, "write memfd");
    p += n;
    left -= static_cast<size_t>(n);
  }
  return MapFd(std::move(fd), size, Access::kCopyOnWrite, FileIdentity{}, "memfd");
}

absl::StatusOr<std::shared_ptr<MappedFile>> MappedFile::remap() const {
  OwnedFd fd(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
  if (!fd.valid()) return PosixError(errno, "dup of a mapped file's descriptor");
  return MapFd(std::move(fd), size_, access_, identity_, "mapped file");
}

absl::StatusOr<uint32_t> MappedFile::fileCrc32(uint64_t offset, size_t size) const {
  uLong crc = crc32_z(0, nullptr, 0);
  constexpr size_t kChunk = size_t{1} << 20;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[std::min(kChunk, std::max<size_t>(size, 1))]);
  while (size > 0) {
    size_t want = std::min(kChunk, size);
    ssize_t n = ::pread(fd_.get(), buf.get(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return n < 0 ? PosixError(errno, "pread") : absl::InternalError("pread: unexpected end of file");
    }
    crc = crc32_z(crc, buf.get(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return static_cast<uint32_t>(crc);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

bool MappedFile::contains(const void* p, size_t n) const {
  auto* b = static_cast<const uint8_t*>(p);
  return data_ != nullptr && b >= data_ && n <= size_ && b - data_ <= static_cast<ptrdiff_t>(size_ - n);
}

}  // namespace pyfleet::internal
