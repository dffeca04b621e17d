// Private workspace and on-disk library copies; see library_copy.h.
#include "loader/library_copy.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>  // ST_NOEXEC
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "loader/base/mapped_file.h"
#include "loader/base/owned_fd.h"
#include "loader/base/posix_error.h"
#include "loader/base/status_macros.h"
#include "loader/elf_edit.h"
#include "loader/elf_file.h"

namespace pyfleet::internal {
namespace {


// PosixError with the errno's symbolic name as well: "...: No space left on device
// (ENOSPC)". Start-up errors about the copy directory say exactly what the system said.
absl::Status CopyDirError(int err, absl::string_view what) {
  absl::Status status = PosixError(err, what);
  const char* name = ::strerrorname_np(err);
  return absl::Status(status.code(), absl::StrCat(status.message(), " (", name != nullptr ? name : "errno", " ",
                                                  err, ")"));
}

int removeEntry(const char* path, const struct stat*, int, struct FTW*) {
  ::remove(path);
  return 0;  // keep going: remove as much as possible
}

// Note [A copy is known only by its own path]: removes from the copy written to `path`
// (open as `fd`) any DT_SONAME other than `path`.
absl::Status keepOnlyOwnName(int fd, const std::string& path) {
  PYFLEET_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file,
                           MappedFile::Map(path, MappedFile::Access::kReadOnly));
  const absl::string_view bytes = file->bytes();
  if (bytes.size() < SELFMAG || std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0) {
    return absl::OkStatus();  // not ELF at all: dlopen refuses it ("invalid ELF header")
  }
  PYFLEET_ASSIGN_OR_RETURN(ElfFile elf, ElfFile::parseDynamicOnly(bytes, path));
  if (!elf.soname() || *elf.soname() == path) return absl::OkStatus();
  std::optional<std::string> dynamic = dynamicWithoutSoname(elf);
  if (!dynamic) return absl::InternalError(absl::StrCat(path, ": DT_SONAME found but not removed"));
  return writeFileAt(fd, *dynamic, elf.dynamicOffset(), path);
}

}  // namespace

absl::Status copyFileInto(int in, uint64_t size, int out, const std::string& path) {
  loff_t in_offset = 0, out_offset = 0;  // explicit: `in` may be shared by other threads
  while (static_cast<uint64_t>(in_offset) < size) {
    const ssize_t n = ::copy_file_range(in, &in_offset, out, &out_offset,
                                        size - static_cast<uint64_t>(in_offset), 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) {
      break;  // fall back to pread/pwrite below
    }
    return CopyDirError(errno, absl::StrCat("copying into ", path));
  }
  // copy_file_range refuses some pairs of file systems (ext4 to tmpfs on current
  // kernels): sendfile still copies in the kernel, from any regular file.
  while (static_cast<uint64_t>(in_offset) < size) {
    if (::lseek(out, static_cast<off_t>(in_offset), SEEK_SET) < 0) break;
    off_t from = static_cast<off_t>(in_offset);
    const ssize_t n = ::sendfile(out, in, &from, size - static_cast<uint64_t>(in_offset));
    if (n > 0) {
      in_offset = from;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // fall back to pread/pwrite below
  }
  uint64_t done = static_cast<uint64_t>(in_offset);
  char buffer[1 << 16];
  while (done < size) {
    const ssize_t n = ::pread(in, buffer, std::min<uint64_t>(sizeof buffer, size - done),
                              static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, absl::StrCat("reading the source of ", path));
    if (n == 0) return absl::DataLossError(absl::StrCat("source of ", path, " shrank"));
    PYFLEET_RETURN_IF_ERROR(writeFileAt(out, absl::string_view(buffer, n), done, path));
    done += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status writeFileAt(int fd, absl::string_view data, uint64_t offset,
                         const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return CopyDirError(errno, absl::StrCat("writing ", path));
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LibraryWorkspace>> LibraryWorkspace::create(std::string temp_root) {
  TempRoot root = temp_root.empty() ? chooseTempRoot() : TempRoot{std::move(temp_root), "given by the caller"};
  const std::string requested = absl::StrCat(root.path, "/pyfleet-XXXXXX");
  std::string pattern = requested;  // mkdtemp overwrites the Xs, even when it fails
  if (::mkdtemp(pattern.data()) == nullptr) {
    const int err = errno;
    return AnnotateStatus(CopyDirError(err, absl::StrCat("creating a private directory ", requested)), root);
  }
  std::unique_ptr<LibraryWorkspace> ws(new LibraryWorkspace(pattern, root));  // owns it from here
  char* canonical = ::realpath(pattern.c_str(), nullptr);
  if (canonical == nullptr) return ws->annotate(CopyDirError(errno, absl::StrCat("resolving ", pattern)));
  ws->path_ = canonical;
  ::free(canonical);
  // See Note [Workspace exists only during loads]: the name is reserved, the directory
  // comes back for each load.
  ::rmdir(ws->path_.c_str());
  return ws;
}

bool LibraryWorkspace::isRoomyTmpfs(const char* dir, uint64_t min_free_bytes) {
  struct statfs fs;
  if (::statfs(dir, &fs) != 0 || fs.f_type != TMPFS_MAGIC) return false;
  // Container runtimes mount /dev/shm noexec: copies there could not map their code.
  if ((fs.f_flags & ST_NOEXEC) != 0) return false;
  if (::access(dir, W_OK | X_OK) != 0) return false;
  return static_cast<uint64_t>(fs.f_bavail) * static_cast<uint64_t>(fs.f_bsize) >= min_free_bytes;
}

std::string LibraryWorkspace::defaultTempRoot() { return chooseTempRoot().path; }

LibraryWorkspace::TempRoot LibraryWorkspace::chooseTempRoot() {
  auto env = [](const char* name) -> std::string {
    const char* value = ::getenv(name);
    return value != nullptr ? value : "";
  };
  if (std::string root = env("PYFLEET_TMPDIR"); !root.empty()) return {root, "from $PYFLEET_TMPDIR"};
  if (isRoomyTmpfs("/dev/shm", kMinInMemoryRootBytes)) {
    return {"/dev/shm", "the default; set PYFLEET_TMPDIR to choose another"};  // Note [Copies live in memory]
  }
  if (std::string root = env("TMPDIR"); !root.empty()) {
    return {root, "from $TMPDIR; set PYFLEET_TMPDIR to choose another"};
  }
  return {"/tmp", "the default; set PYFLEET_TMPDIR to choose another"};
}

absl::Status LibraryWorkspace::AnnotateStatus(const absl::Status& status, const TempRoot& root) {
  if (status.ok()) return status;
  std::string note = absl::StrCat(" [library copies are written under ", root.path, ", ", root.origin);
  // A copy in a noexec mount cannot map its code: dlopen says only "failed to map segment".
  struct statvfs fs;
  if (::statvfs(root.path.c_str(), &fs) == 0 && (fs.f_flag & ST_NOEXEC) != 0) {
    absl::StrAppend(&note, "; that file system is mounted noexec, which library copies cannot run from");
  }
  absl::StrAppend(&note, "]");
  absl::Status annotated(status.code(), absl::StrCat(status.message(), note));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) { annotated.SetPayload(url, payload); });
  return annotated;
}

absl::Status LibraryWorkspace::annotate(const absl::Status& status) const { return AnnotateStatus(status, root_); }

LibraryWorkspace::~LibraryWorkspace() {
  ::nftw(path_.c_str(), removeEntry, 16, FTW_DEPTH | FTW_PHYS);
}

std::string LibraryWorkspace::pathOf(absl::string_view name) const {
  return absl::StrCat(path_, "/", name);
}

absl::StatusOr<int> LibraryWorkspace::createFile(absl::string_view name, std::string& path) const {
  if (name.empty() || name.find('/') != absl::string_view::npos || name == "." || name == "..") {
    return absl::InvalidArgumentError(absl::StrCat("bad library copy file name \"", name, "\""));
  }
  path = pathOf(name);
  // Note [A copy is known only by its own path]: nothing may answer to it yet.
  if (void* loaded = ::dlopen(path.c_str(), RTLD_NOLOAD | RTLD_LAZY)) {
    ::dlclose(loaded);
    return absl::AlreadyExistsError(absl::StrCat("an object is already loaded as ", path));
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  if (fd < 0) return CopyDirError(errno, absl::StrCat("creating ", path));
  return fd;
}

absl::StatusOr<void*> LibraryWorkspace::openAndUnlink(const std::string& path) const {
  // See Note [DT_NEEDED matches loaded objects by name]: once loaded, the file is not
  // needed any more.
  absl::Cleanup remove = [&path] { ::unlink(path.c_str()); };  // also when dlopen fails
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = ::dlerror();
    return absl::FailedPreconditionError(
        absl::StrCat("dlopen of ", path, " failed: ", error ? error : "(no dlerror)"));
  }
  return handle;
}

absl::Status LibraryWorkspace::beginLoad() const {
  absl::MutexLock lock(&mu_);
  if (loads_in_progress_ == 0 && ::mkdir(path_.c_str(), 0700) != 0) {
    if (errno != EEXIST) return CopyDirError(errno, absl::StrCat("creating ", path_));
    struct stat st;
    if (::lstat(path_.c_str(), &st) != 0) return PosixError(errno, absl::StrCat("stat of ", path_));
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 0777) != 0700) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_, " exists but is not this process's private workspace directory"));
    }
  }
  ++loads_in_progress_;
  return absl::OkStatus();
}

void LibraryWorkspace::endLoad() const {
  absl::MutexLock lock(&mu_);
  if (--loads_in_progress_ == 0) ::rmdir(path_.c_str());  // fails harmlessly if not empty
}

absl::StatusOr<void*> LibraryWorkspace::loadWith(absl::string_view name, FileWriter write) const {
  return loadWith(name, write, [](void*, int) {});
}

absl::StatusOr<void*> LibraryWorkspace::loadWith(absl::string_view name, FileWriter write,
                                                 AfterLoad after_load) const {
  absl::StatusOr<void*> handle = loadWithUnannotated(name, write, after_load);
  if (!handle.ok()) return annotate(handle.status());
  return handle;
}

absl::StatusOr<void*> LibraryWorkspace::loadWithUnannotated(absl::string_view name, FileWriter write,
                                                            AfterLoad after_load) const {
  PYFLEET_RETURN_IF_ERROR(beginLoad());
  absl::Cleanup end_load = [this] { endLoad(); };
  std::string path;
  PYFLEET_ASSIGN_OR_RETURN(int raw_fd, createFile(name, path));
  OwnedFd fd(raw_fd);  // kept open for after_load
  {
    absl::Cleanup remove = [&path] { ::unlink(path.c_str()); };  // on an error before dlopen
    PYFLEET_RETURN_IF_ERROR(write(fd.get(), path));
    PYFLEET_RETURN_IF_ERROR(keepOnlyOwnName(fd.get(), path));  // Note [A copy is known only by its own path]
    std::move(remove).Cancel();
  }
  PYFLEET_ASSIGN_OR_RETURN(void* handle, openAndUnlink(path));
  after_load(handle, fd.get());
  return handle;
}

absl::StatusOr<void*> LibraryWorkspace::loadImage(absl::string_view name,
                                                  absl::string_view image) const {
  return loadWith(name, [image](int fd, const std::string& path) {
    return writeFileAt(fd, image, 0, path);
  });
}

absl::StatusOr<void*> LibraryWorkspace::loadFileCopy(absl::string_view name,
                                                     const std::string& source_path) const {
  OwnedFd in(::open(source_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return PosixError(errno, absl::StrCat("opening ", source_path));
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return PosixError(errno, absl::StrCat("stat of ", source_path));
  return loadWith(name, [&in, &st](int out, const std::string& path) {
    return copyFileInto(in.get(), static_cast<uint64_t>(st.st_size), out, path);
  });
}

}  // namespace pyfleet::internal
