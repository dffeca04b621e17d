// File: mapped_file.cpp — see mapped_file.h.
#include "runtime/archive/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pyfleet::internal {

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r returns the message pointer (possibly not `buf`).
  const char* text = strerror_r(err, buf, sizeof(buf));
  return text != nullptr ? std::string(text) : absl::StrCat("errno ", err);
}

static absl::Status ErrnoStatus(int err, const std::string& what) {
  std::string msg = absl::StrCat(what, ": ", ErrnoText(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<std::shared_ptr<MappedFile>> MappedFile::Map(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
  absl::Cleanup fd_closer = [fd] { ::close(fd); };
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, absl::StrCat("fstat ", path));
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is a directory"));
  }
  FileIdentity id;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = static_cast<uint64_t>(st.st_size);
  id.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  id.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
  id.valid = true;
  std::move(fd_closer).Cancel();
  return MapFd(fd, static_cast<size_t>(st.st_size), id, path);
}

absl::StatusOr<std::shared_ptr<MappedFile>> MappedFile::MapFd(int fd, size_t size,
                                                             const FileIdentity& id,
                                                             const std::string& what) {
  absl::Cleanup fd_closer = [fd] { ::close(fd); };
  void* p = nullptr;
  if (size > 0) {
    // See Note [Copy-on-write mapping].
    p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return ErrnoStatus(errno, absl::StrCat("mmap ", what));
  }
  std::move(fd_closer).Cancel();
  std::shared_ptr<MappedFile> m(new MappedFile(static_cast<uint8_t*>(p), size, fd));
  m->identity_ = id;
  return m;
}

absl::StatusOr<std::shared_ptr<MappedFile>> MappedFile::Copy(const void* data, size_t size) {
  int fd = static_cast<int>(::syscall(SYS_memfd_create, "pyfleet-archive", 1u /*MFD_CLOEXEC*/));
  if (fd < 0) return ErrnoStatus(errno, "memfd_create");
  absl::Cleanup fd_closer = [fd] { ::close(fd); };
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(errno, "write memfd");
    p += n;
    left -= static_cast<size_t>(n);
  }
  std::move(fd_closer).Cancel();
  return MapFd(fd, size, FileIdentity{}, "memfd");
}

absl::StatusOr<std::shared_ptr<MappedFile>> MappedFile::remap() const {
  int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "dup archive fd");
  return MapFd(fd, size_, identity_, "archive");
}

absl::StatusOr<uint32_t> MappedFile::fileCrc32(uint64_t offset, size_t size) const {
  uLong crc = crc32_z(0, nullptr, 0);
  constexpr size_t kChunk = size_t{1} << 20;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[std::min(kChunk, std::max<size_t>(size, 1))]);
  while (size > 0) {
    size_t want = std::min(kChunk, size);
    ssize_t n = ::pread(fd_, buf.get(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::InternalError(n < 0 ? absl::StrCat("pread: ", ErrnoText(errno))
                                       : std::string("pread: unexpected end of file"));
    }
    crc = crc32_z(crc, buf.get(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return static_cast<uint32_t>(crc);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
}

bool MappedFile::contains(const void* p, size_t n) const {
  auto* b = static_cast<const uint8_t*>(p);
  return data_ != nullptr && b >= data_ && n <= size_ && b - data_ <= static_cast<ptrdiff_t>(size_ - n);
}

}  // namespace pyfleet::internal
