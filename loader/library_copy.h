// File: library_copy.h
//
// LibraryWorkspace owns a private directory (mkdtemp) in which per-interpreter library
// copies are briefly written to be dlopen'ed. Each load writes one file, dlopens it
// RTLD_NOW|RTLD_LOCAL and unlinks it at once, and the directory itself exists only while
// a load is in progress (see Note [Workspace exists only during loads]); the destructor
// removes whatever is left. Guaranteed for every copy it loads: the copy is known by its
// own path only, never by its original's DT_SONAME, so it never answers for a
// process-global library's name (Note [A copy is known only by its own path]).
//
//   PYFLEET_ASSIGN_OR_RETURN(std::unique_ptr<LibraryWorkspace> ws, LibraryWorkspace::create());
//   PYFLEET_ASSIGN_OR_RETURN(void* handle, ws->loadImage("i00000003-e000001-_json.so", image));
//   // ws->pathOf("i00000003-e000001-_json.so") is the one name the copy is known by; the
//   // file itself is already gone.
//
// Handles are never dlclose'd: interpreters are a fixed pool for the life of the process
// (ARCHITECTURE.md point 11), and a copy's code must stay mapped as long as anything may
// call into it.
//
// Note [DT_NEEDED matches loaded objects by name]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// glibc's _dl_map_object (elf/dl-load.c), given a name from dlopen() or from a DT_NEEDED
// entry, first walks the objects already loaded in the namespace and returns the one
// whose l_name (the string it was dlopen'ed by) or DT_SONAME equals that name, before it
// touches the file system. So once a copy has been dlopen'ed by its full path, another
// copy whose DT_NEEDED is that exact path binds to it, and dlopen(path) returns its
// handle, even though the file has been unlinked. That is why a copy's file can be removed
// right after its dlopen, why a copy must be loaded before anything that needs it
// (loader/library_loader.cpp does so), and why a copy must not keep its original's
// DT_SONAME (next Note). Tested in library_copy_test.cpp
// (LibraryCopyTest.NeededNameMatchesUnlinkedLoadedCopy).
//
// Note [A copy is known only by its own path]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// By the Note above, a loaded object answers every later dlopen() and DT_NEEDED of its
// l_name (the path it was dlopen'ed by) and of its DT_SONAME, RTLD_LOCAL or not. A copy
// that kept its original's DT_SONAME ("libz.so.1") would therefore stand in for the
// original: any library loaded later that needs libz.so.1, anywhere in the process, would
// bind to that private copy instead of the real libz unless the real one had been loaded
// first (it happened between two tests of one process: a libz copy made by one answered
// for libz in the next). So every copy this workspace dlopens (loadWith(), and so
// loadImage() and loadFileCopy()) is guaranteed to be known by its own path only:
//  - its DT_SONAME is absent or exactly its own path, pathOf(name): after the writer is
//    done and before the dlopen, the file's dynamic section is read through a read-only
//    mapping (ElfFile::parseDynamicOnly: 0.2-0.5 ms for libtorch_python in /dev/shm on
//    this project's VMs, mostly page faults and unmapping; within the noise of the
//    ~25 ms a later interpreter's torch._C copies take) and any other DT_SONAME is
//    removed in place (dynamicWithoutSoname(): same size, no relayout);
//  - no object in the process is known by that path already (AlreadyExists otherwise).
// Its path lies in this private directory and is named only by the DT_NEEDED of other
// copies made to need it (library_loader.h), so no library's own DT_NEEDED can bind to a
// copy, and process-global libraries keep answering to their names. A file without the
// ELF magic is left to dlopen, which refuses it; one with the magic that does not parse
// as an x86-64 shared object is refused before dlopen (ElfFile's error). LibraryLoader
// gives the copies whose names it knows in advance (the interpreter library,
// Python-dependent libraries) their own path as DT_SONAME in the template, so nothing is
// rewritten for them. Tested in library_copy_test.cpp
// (LibraryCopyTest.CopyNeverAnswersForTheOriginalsSoname and the tests after it).
//
// Note [Copies live in memory]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A later interpreter writes some 32 MB of library copies (libtorch_python alone ~25 MB).
// On a disk file system (ext4 /tmp) that cost 0.10-0.16 s per interpreter on this
// project's 2-core VMs, and the dirty pages of the unlinked files were still written
// back to disk; on tmpfs the same writes take 0.06-0.08 s and never reach a disk. So the
// default root is /dev/shm, the RAM-backed place every Linux system has, as a memfd
// would be, when it has room (1 GiB free: containers often mount a small one); but tmpfs
// pages cannot be dropped like clean page cache, so after a copy's
// read-only segments are re-mapped onto the original file (Note [Sharing read-only
// segments with the original file]) the copy's file gives those pages back by punching
// holes (releaseSharedPages). What stays is what the copy still maps: its first
// segment (headers, .dynsym, .dynstr) and its writable data.
//
// Note [Start-up errors name the copy directory]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The copy directory is the one thing an operator sets up for pyfleet, and it fails in
// ordinary ways: PYFLEET_TMPDIR names a read-only or missing place, a path under a file,
// a full or too small tmpfs, a noexec mount. Every error of create() and of a load
// (creating the directory or a copy, writing it, dlopen) therefore ends with the root
// and where it came from, e.g. "writing /mnt/small/pyfleet-Ab12Cd/i00000000-
// interpreter.so: No space left on device (ENOSPC 28) [library copies are written under
// /mnt/small, from $PYFLEET_TMPDIR]", plus a word about noexec when the root is mounted
// so. An interpreter's start then fails with that pyfleet::Error (an extension copy's
// failure inside `import torch` reaches the host as the ImportError's message). Tested
// in tests/faults/library_dir_test.cpp.
//
// Note [Workspace exists only during loads]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A serving process usually keeps its interpreters (and so this workspace) until exit,
// and may never run our destructor. Because copies are known by name once loaded (Note
// above), the directory is needed only while a file is written and dlopen'ed: create()
// reserves a unique name with mkdtemp and removes the directory at once; each load
// re-creates it (mode 0700) and the last concurrent load removes it again. A directory
// found in its place that is not ours (other owner, not a directory, wrong mode) makes
// the load fail instead of writing into it. Nothing is left on disk after a normal exit,
// even with interpreters alive.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace pyfleet::internal {

class LibraryWorkspace {
 public:
  // LibraryWorkspace::create()
  //
  // Makes a private directory "pyfleet-XXXXXX" (mode 0700) under `temp_root`; "" means
  // defaultTempRoot(). The path is made absolute and canonical
  // (it is embedded in DT_NEEDED names that must match exactly). Errors: the errno of
  // mkdtemp/realpath as an absl status naming the directory, the errno's text and name,
  // and where the root came from (see Note [Start-up errors name the copy directory]).
  static absl::StatusOr<std::unique_ptr<LibraryWorkspace>> create(std::string temp_root = "");

  // Removes the directory and everything in it. Never throws; failures are ignored.
  ~LibraryWorkspace();

  // LibraryWorkspace::defaultTempRoot()
  //
  // Where copies are written when no root is given: $PYFLEET_TMPDIR if set and not
  // empty; else /dev/shm when isRoomyTmpfs("/dev/shm", kMinInMemoryRootBytes) (see Note
  // [Copies live in memory]); else $TMPDIR; else /tmp.
  static std::string defaultTempRoot();

  // Where the copy directory goes and why (for messages: "from $PYFLEET_TMPDIR").
  struct TempRoot {
    std::string path;
    std::string origin;
  };
  static TempRoot chooseTempRoot();

  // Whether `dir` is a tmpfs directory, not mounted noexec, this process may write to
  // with at least `min_free_bytes` available. A container's small /dev/shm (Docker's default is 64 MB;
  // each interpreter writes ~32 MB and keeps ~7 MB there) is not used by default.
  static bool isRoomyTmpfs(const char* dir, uint64_t min_free_bytes);
  static constexpr uint64_t kMinInMemoryRootBytes = uint64_t{1} << 30;
  LibraryWorkspace(const LibraryWorkspace&) = delete;
  LibraryWorkspace& operator=(const LibraryWorkspace&) = delete;

  // Absolute path of the directory.
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string pathOf(absl::string_view name) const;

  // LibraryWorkspace::loadImage()
  //
  // Writes `image` to pathOf(name), removes any DT_SONAME other than pathOf(name) from
  // the file (Note [A copy is known only by its own path]), dlopens it
  // RTLD_NOW|RTLD_LOCAL and unlinks the file (also when dlopen fails). `name` must be a
  // plain file name (no '/') not in use. Returns the dlopen handle, owned by the process
  // (never closed). Errors: InvalidArgument for a bad name, AlreadyExists if the file
  // exists or an object is already loaded by that path, the errno of a failed write,
  // ElfFile::parseDynamicOnly()'s error for an ELF file that does not parse,
  // FailedPrecondition with dlerror()'s text if dlopen fails. Thread-safe.
  absl::StatusOr<void*> loadImage(absl::string_view name, absl::string_view image) const;

  // LibraryWorkspace::loadFileCopy()
  //
  // Like loadImage() with the bytes of the file `source_path`, copied in the kernel
  // (copy_file_range) instead of through memory: a copy with its own inode, which glibc
  // loads again instead of returning the original (it dedups by device and inode), and
  // without the original's DT_SONAME. NotFound if `source_path` does not exist.
  absl::StatusOr<void*> loadFileCopy(absl::string_view name, const std::string& source_path) const;

  // LibraryWorkspace::loadWith()
  //
  // The general form: creates pathOf(name) (mode 0700, exclusively), lets `write` fill
  // the open file descriptor (it must not close it), then checks the DT_SONAME, dlopens
  // and unlinks as loadImage() does. An error from `write` is returned after removing
  // the file. `after_load`, if given, runs once the copy is loaded, with the file still
  // open (read-write) and its handle: e.g. to release pages no longer needed.
  using FileWriter = absl::FunctionRef<absl::Status(int fd, const std::string& path)>;
  using AfterLoad = absl::FunctionRef<void(void* handle, int fd)>;
  absl::StatusOr<void*> loadWith(absl::string_view name, FileWriter write) const;
  absl::StatusOr<void*> loadWith(absl::string_view name, FileWriter write, AfterLoad after_load) const;

 private:
  LibraryWorkspace(std::string path, TempRoot root) : path_(std::move(path)), root_(std::move(root)) {}
  // `status` (if not OK) with the root and its origin appended; see Note [Start-up
  // errors name the copy directory].
  static absl::Status AnnotateStatus(const absl::Status& status, const TempRoot& root);
  absl::Status annotate(const absl::Status& status) const;
  absl::StatusOr<void*> loadWithUnannotated(absl::string_view name, FileWriter write, AfterLoad after_load) const;
  // Creates pathOf(name) exclusively, unless an object is loaded by that path already;
  // returns the fd and the path.
  absl::StatusOr<int> createFile(absl::string_view name, std::string& path) const;
  // dlopens `path`, then unlinks it.
  absl::StatusOr<void*> openAndUnlink(const std::string& path) const;

  // Makes the directory exist for one more load in progress / ends that load.
  absl::Status beginLoad() const;
  void endLoad() const;
  std::string path_;
  TempRoot root_;
  mutable absl::Mutex mu_;
  mutable int loads_in_progress_ ABSL_GUARDED_BY(mu_) = 0;
};

// writeFileAt()
//
// pwrite()s all of `data` to `fd` at `offset`, retrying short writes and EINTR. Errors:
// the errno as an absl status naming `path`.
absl::Status writeFileAt(int fd, absl::string_view data, uint64_t offset, const std::string& path);

// copyFileInto()
//
// Copies the first `size` bytes of the file open as `in` to the start of `out`, in the
// kernel when it can (copy_file_range; pread/pwrite otherwise), with explicit offsets so
// `in` may be shared by threads. Errors: the errno as an absl status naming `path` (the
// destination); DataLoss if `in` is shorter than `size`.
absl::Status copyFileInto(int in, uint64_t size, int out, const std::string& path);

}  // namespace pyfleet::internal
