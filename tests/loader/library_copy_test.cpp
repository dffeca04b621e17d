// Tests for loader/library_copy.h: the workspace is private and cleaned up, files are
// unlinked right after loading, a later DT_NEEDED binds to an unlinked copy by name
// (Note [DT_NEEDED matches loaded objects by name]) and by nothing else (Note [A copy is
// known only by its own path]).
#include "loader/library_copy.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loader/elf_edit.h"
#include "loader_test_util.h"

namespace pyfleet::internal {
namespace {

using ::pyfleet::internal::testing::kLibz;
using ::pyfleet::internal::testing::listDir;
using ::pyfleet::internal::testing::objectFileOf;
using ::pyfleet::internal::testing::readTestFile;
using ::pyfleet::internal::testing::realPath;
using ::pyfleet::internal::testing::sonameOf;
using ::pyfleet::internal::testing::symbolOrFail;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::unique_ptr<LibraryWorkspace> makeWorkspace(const std::string& root = "") {
  absl::StatusOr<std::unique_ptr<LibraryWorkspace>> ws = LibraryWorkspace::create(root);
  EXPECT_TRUE(ws.ok()) << ws.status();
  return ws.ok() ? *std::move(ws) : nullptr;
}

// See Note [Workspace exists only during loads].
TEST(LibraryCopyTest, WorkspaceExistsOnlyDuringLoads) {
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  ASSERT_EQ(ws->path().front(), '/');
  EXPECT_FALSE(exists(ws->path()));
  struct stat during{};
  absl::StatusOr<void*> handle = ws->loadWith("probe.so", [&](int fd, const std::string& path) {
    EXPECT_EQ(::stat(ws->path().c_str(), &during), 0);
    return writeFileAt(fd, readTestFile(kLibz), 0, path);
  });
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_TRUE(S_ISDIR(during.st_mode));
  EXPECT_EQ(during.st_mode & 0777, 0700u);
  EXPECT_FALSE(exists(ws->path()));
}

TEST(LibraryCopyTest, ForeignDirectoryInPlaceOfWorkspaceIsRefused) {
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  ASSERT_EQ(::mkdir(ws->path().c_str(), 0755), 0);  // not 0700: not ours
  absl::StatusOr<void*> handle = ws->loadImage("x.so", "x");
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(handle.status().message()), HasSubstr("not this process's private workspace"));
}

TEST(LibraryCopyTest, WorkspaceIsRemovedWithEverythingInIt) {
  std::string path;
  {
    std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
    ASSERT_NE(ws, nullptr);
    path = ws->path();
    ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
    // Leftovers (a crash mid-load would leave one) are removed too.
    FILE* f = std::fopen(ws->pathOf("stray.so").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
    ASSERT_EQ(::mkdir(ws->pathOf("sub").c_str(), 0700), 0);
  }
  EXPECT_FALSE(exists(path));
}

// Sets an environment variable for the scope, restoring it (or its absence) after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = ::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value != nullptr) ::setenv(name, value, 1); else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) ::setenv(name_, old_.c_str(), 1); else ::unsetenv(name_);
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

TEST(LibraryCopyTest, UsesGivenRootOrPyfleetTmpdir) {
  auto root = std::make_unique<testing::ScratchDir>();
  ASSERT_FALSE(root->path().empty());
  std::unique_ptr<LibraryWorkspace> inside = makeWorkspace(root->path());
  ASSERT_NE(inside, nullptr);
  EXPECT_EQ(inside->path().rfind(root->path() + "/pyfleet-", 0), 0u) << inside->path();

  {
    ScopedEnv env("PYFLEET_TMPDIR", root->path().c_str());
    std::unique_ptr<LibraryWorkspace> from_env = makeWorkspace("");
    ASSERT_NE(from_env, nullptr);
    EXPECT_EQ(from_env->path().rfind(root->path() + "/pyfleet-", 0), 0u) << from_env->path();
  }

  absl::StatusOr<std::unique_ptr<LibraryWorkspace>> missing =
      LibraryWorkspace::create("/nonexistent/dir");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/dir/pyfleet-XXXXXX"));
}

TEST(LibraryCopyTest, DefaultRootIsInMemory) {
  // Note [Copies live in memory]: /dev/shm (tmpfs on Debian) before $TMPDIR.
  ScopedEnv no_override("PYFLEET_TMPDIR", nullptr);
  ScopedEnv tmpdir("TMPDIR", "/tmp");
  struct statfs fs;
  ASSERT_EQ(::statfs("/dev/shm", &fs), 0) << "this test expects Debian's /dev/shm";
  ASSERT_EQ(fs.f_type, TMPFS_MAGIC);
  ASSERT_TRUE(LibraryWorkspace::isRoomyTmpfs("/dev/shm", LibraryWorkspace::kMinInMemoryRootBytes))
      << "this test expects a /dev/shm of 1 GiB or more, as on a Debian machine";
  EXPECT_EQ(LibraryWorkspace::defaultTempRoot(), "/dev/shm");
  // Too little room, not tmpfs, or missing: not used.
  EXPECT_FALSE(LibraryWorkspace::isRoomyTmpfs("/dev/shm", uint64_t{1} << 62));
  EXPECT_FALSE(LibraryWorkspace::isRoomyTmpfs(PYFLEET_TEST_FAKE_INTERPRETER, 0));
  EXPECT_FALSE(LibraryWorkspace::isRoomyTmpfs("/nonexistent/dir", 0));
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace("");
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(ws->path().rfind("/dev/shm/pyfleet-", 0), 0u) << ws->path();
}

TEST(LibraryCopyTest, AfterLoadSeesTheOpenFileBeforeItIsRemoved) {
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  const std::string image = readTestFile(kLibz);
  void* seen_handle = nullptr;
  struct stat during {};
  absl::StatusOr<void*> handle = ws->loadWith(
      "libz-after-load.so",
      [&](int fd, const std::string& path) { return writeFileAt(fd, image, 0, path); },
      [&](void* loaded, int fd) {
        seen_handle = loaded;
        ASSERT_EQ(::fstat(fd, &during), 0);
      });
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_EQ(seen_handle, *handle);
  EXPECT_EQ(static_cast<size_t>(during.st_size), image.size());
  EXPECT_FALSE(exists(ws->pathOf("libz-after-load.so")));
}

TEST(LibraryCopyTest, CopyFileIntoCopiesAcrossFileSystemsAndReportsShortSources) {
  // libz from the system disk into the in-memory workspace root and into a scratch
  // directory: whichever in-kernel copy the pair allows, the bytes arrive whole.
  const std::string original = readTestFile(kLibz);
  const int in = ::open(kLibz, O_RDONLY | O_CLOEXEC);
  ASSERT_GE(in, 0);
  testing::ScratchDir scratch;
  for (const std::string& dir : {std::string("/dev/shm"), scratch.path()}) {
    const std::string path = dir + "/pyfleet-copy-test-" + std::to_string(::getpid());
    const int out = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(out, 0) << path;
    ::unlink(path.c_str());
    absl::Status copied = copyFileInto(in, original.size(), out, path);
    ASSERT_TRUE(copied.ok()) << copied;
    std::string back(original.size(), '\0');
    EXPECT_EQ(::pread(out, back.data(), back.size(), 0), static_cast<ssize_t>(back.size()));
    EXPECT_TRUE(back == original) << dir;
    // Asking for more than the source holds is DataLoss, not a silently short copy.
    EXPECT_EQ(copyFileInto(in, original.size() + 4096, out, path).code(), absl::StatusCode::kDataLoss);
    ::close(out);
  }
  ::close(in);
}

TEST(LibraryCopyTest, FileIsUnlinkedRightAfterLoad) {
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  ElfEdits edits;
  edits.soname = "libz-unlink-test.so";
  absl::StatusOr<EditedImage> image = editElf(readTestFile(kLibz), "libz.so.1", edits);
  ASSERT_TRUE(image.ok()) << image.status();
  absl::StatusOr<void*> handle = ws->loadImage("libz-unlink-test.so", image->image);
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_FALSE(exists(ws->path()));
  EXPECT_NE(symbolOrFail(*handle, "zlibVersion"), nullptr);
  // dlopen of the same path string finds the loaded copy, though the file is gone.
  const std::string path = ws->pathOf("libz-unlink-test.so");
  void* again = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  EXPECT_EQ(again, *handle);
  void* reopened = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  EXPECT_EQ(reopened, *handle);
}

TEST(LibraryCopyTest, NeededNameMatchesUnlinkedLoadedCopy) {
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  // Library A: a plain copy of the fake interpreter, loaded then unlinked.
  absl::StatusOr<void*> a = ws->loadFileCopy("a-interpreter.so", PYFLEET_TEST_FAKE_INTERPRETER);
  ASSERT_TRUE(a.ok()) << a.status();
  const std::string a_path = ws->pathOf("a-interpreter.so");
  ASSERT_FALSE(exists(a_path));
  // Library B needs PyLong_FromLong; its added DT_NEEDED names A's (deleted) path.
  ElfEdits edits;
  edits.add_needed = {a_path};
  // B's $ORIGIN helper library is next to the original, not in the workspace.
  const std::string testlibs = PYFLEET_TEST_FAKE_INTERPRETER;
  edits.runpath = testlibs.substr(0, testlibs.rfind('/'));
  absl::StatusOr<EditedImage> b =
      editElf(readTestFile(PYFLEET_TEST_FAKE_PLAIN_EXTENSION), "fake_plain_extension.so", edits);
  ASSERT_TRUE(b.ok()) << b.status();
  absl::StatusOr<void*> b_handle = ws->loadImage("b-extension.so", b->image);
  ASSERT_TRUE(b_handle.ok()) << b_handle.status();

  using PyFn = void* (*)();
  auto call = reinterpret_cast<PyFn>(symbolOrFail(*b_handle, "fake_plain_extension_python"));
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(call(), symbolOrFail(*a, "pyfleet_fake_interpreter_marker"));
  EXPECT_FALSE(exists(ws->path()));
}

TEST(LibraryCopyTest, NeededPathThatWasNeverLoadedFails) {
  // The contrast to the test above: the name match is what makes the unlinked path work.
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  ElfEdits edits;
  edits.add_needed = {ws->pathOf("never-loaded.so")};
  absl::StatusOr<EditedImage> b = editElf(readTestFile(kLibz), "libz.so.1", edits);
  ASSERT_TRUE(b.ok()) << b.status();
  absl::StatusOr<void*> handle = ws->loadImage("needs-missing.so", b->image);
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(handle.status().message()), HasSubstr("never-loaded.so: cannot open shared object"));
  EXPECT_FALSE(exists(ws->path()));  // removed after the failed dlopen too
}

// Loads two private copies of the fake Python-dependent library (each bound to its own
// fake interpreter copy) and returns the address of their UNIQUE static in each.
std::pair<void*, void*> uniqueAddressesOfTwoCopies(LibraryWorkspace& ws, bool demote,
                                                   const std::string& tag) {
  std::vector<void*> addresses;
  for (int i = 0; i < 2; ++i) {
    const std::string interp = tag + "-interp" + std::to_string(i) + ".so";
    absl::StatusOr<void*> ih = ws.loadFileCopy(interp, PYFLEET_TEST_FAKE_INTERPRETER);
    EXPECT_TRUE(ih.ok()) << ih.status();
    ElfEdits edits;
    edits.add_needed = {ws.pathOf(interp)};
    edits.soname = ws.pathOf(tag + "-dep" + std::to_string(i) + ".so");
    edits.demote_unique = demote;
    absl::StatusOr<EditedImage> image = editElf(
        readTestFile(PYFLEET_TEST_FAKE_PYTHON_DEPENDENCY), "fake_python_dependency.so", edits);
    EXPECT_TRUE(image.ok()) << image.status();
    if (!image.ok()) return {nullptr, nullptr};
    EXPECT_EQ(image->demoted, demote ? 1 : 0);
    absl::StatusOr<void*> handle = ws.loadImage(tag + "-dep" + std::to_string(i) + ".so",
                                                image->image);
    EXPECT_TRUE(handle.ok()) << handle.status();
    if (!handle.ok()) return {nullptr, nullptr};
    using UniqueFn = int* (*)();
    auto fn = reinterpret_cast<UniqueFn>(symbolOrFail(*handle, "fake_dependency_unique"));
    addresses.push_back(fn ? fn() : nullptr);
  }
  return {addresses[0], addresses[1]};
}

TEST(LibraryCopyTest, UniqueSymbolsAreProcessWideUnlessDemoted) {
  // Note [STB_GNU_UNIQUE demotion], shown on a real load.
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  auto [kept0, kept1] = uniqueAddressesOfTwoCopies(*ws, /*demote=*/false, "kept");
  ASSERT_NE(kept0, nullptr);
  EXPECT_EQ(kept0, kept1) << "glibc should share STB_GNU_UNIQUE across RTLD_LOCAL copies";
  auto [demoted0, demoted1] = uniqueAddressesOfTwoCopies(*ws, /*demote=*/true, "demoted");
  ASSERT_NE(demoted0, nullptr);
  EXPECT_NE(demoted0, demoted1);
  EXPECT_NE(demoted0, kept0);
}

TEST(LibraryCopyTest, RejectsBadNamesAndExistingFiles) {
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(ws->loadImage("../escape.so", "x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ws->loadImage("", "x").status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(::mkdir(ws->path().c_str(), 0700), 0);
  FILE* f = std::fopen(ws->pathOf("taken.so").c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  EXPECT_EQ(ws->loadImage("taken.so", "x").status().code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<void*> missing = ws->loadFileCopy("m.so", "/nonexistent/lib.so");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/lib.so"));
}

// Note [A copy is known only by its own path]. soname_user needs
// libpyfleet_test_soname_target.so, which nothing else in this process loads: before the
// guarantee, the copy made first answered that DT_NEEDED and soname_user bound into it.
TEST(LibraryCopyTest, CopyNeverAnswersForTheOriginalsSoname) {
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  absl::StatusOr<void*> copy = ws->loadFileCopy("soname-target-copy.so", PYFLEET_TEST_SONAME_TARGET);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(sonameOf(*copy), std::nullopt);  // the original's was removed before dlopen
  void* in_copy = symbolOrFail(*copy, "pyfleet_test_soname_target");

  void* user = ::dlopen(PYFLEET_TEST_SONAME_USER, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(user, nullptr) << ::dlerror();
  using AddressFn = const void* (*)();
  auto target_function = reinterpret_cast<AddressFn>(symbolOrFail(user, "soname_user_target_function"));
  ASSERT_NE(target_function, nullptr);
  const void* bound = target_function();
  EXPECT_NE(bound, in_copy);
  EXPECT_EQ(realPath(objectFileOf(bound)), realPath(PYFLEET_TEST_SONAME_TARGET));
  // dlopen by the original's name finds the original too, not the copy.
  void* by_name = ::dlopen("libpyfleet_test_soname_target.so", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(by_name, nullptr) << ::dlerror();
  EXPECT_NE(by_name, *copy);
  EXPECT_EQ(::dlsym(by_name, "pyfleet_test_soname_target"), bound);
  ::dlclose(by_name);
}

// Defect 10's own case: a copy of libz written by a writer (as LibraryLoader's templates
// are), then a library that needs libz.so.1. This binary links libz (loader/base's
// CRC-32), so the real one is loaded first and would be found first anyway; what shows
// the guarantee here is the copy's DT_SONAME.
TEST(LibraryCopyTest, LibzCopyIsNotLibzForLaterLibraries) {
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  absl::StatusOr<void*> copy = ws->loadWith("probe.so", [&](int fd, const std::string& path) {
    return writeFileAt(fd, readTestFile(kLibz), 0, path);
  });
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(sonameOf(*copy), std::nullopt);  // was "libz.so.1"
  EXPECT_EQ(objectFileOf(symbolOrFail(*copy, "zlibVersion")), ws->pathOf("probe.so"));

  void* user = ::dlopen(PYFLEET_TEST_SONAME_USER, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(user, nullptr) << ::dlerror();
  using AddressFn = const void* (*)();
  auto zlib_function = reinterpret_cast<AddressFn>(symbolOrFail(user, "soname_user_zlib_function"));
  ASSERT_NE(zlib_function, nullptr);
  const std::string file = objectFileOf(zlib_function());
  EXPECT_EQ(realPath(file), realPath(kLibz));
  EXPECT_THAT(realPath(file), ::testing::StartsWith("/usr/lib/x86_64-linux-gnu/libz.so.1."));
  EXPECT_THAT(file, ::testing::Not(HasSubstr(ws->path())));
  void* by_name = ::dlopen("libz.so.1", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(by_name, nullptr) << ::dlerror();
  EXPECT_NE(by_name, *copy);
  ::dlclose(by_name);
}

TEST(LibraryCopyTest, CopyKeepsASonameThatIsItsOwnPath) {
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  ElfEdits edits;
  edits.soname = ws->pathOf("own-name.so");
  absl::StatusOr<EditedImage> image = editElf(readTestFile(kLibz), "libz.so.1", edits);
  ASSERT_TRUE(image.ok()) << image.status();
  absl::StatusOr<void*> handle = ws->loadImage("own-name.so", image->image);
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_EQ(sonameOf(*handle), ws->pathOf("own-name.so"));
  // Any other name is removed, whether the original's or made up.
  edits.soname = "libz-made-up-name.so.1";
  image = editElf(readTestFile(kLibz), "libz.so.1", edits);
  ASSERT_TRUE(image.ok()) << image.status();
  handle = ws->loadImage("made-up-name.so", image->image);
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_EQ(sonameOf(*handle), std::nullopt);
  EXPECT_EQ(::dlopen("libz-made-up-name.so.1", RTLD_NOW | RTLD_NOLOAD), nullptr);
}

TEST(LibraryCopyTest, PathThatIsAlreadyLoadedIsRefused) {
  // The file is gone after the first load, but its path still names the loaded copy:
  // a second copy by that path would silently be the first one.
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  ASSERT_TRUE(ws->loadFileCopy("twice.so", kLibz).ok());
  absl::StatusOr<void*> again = ws->loadFileCopy("twice.so", kLibz);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.status().message()),
              HasSubstr("an object is already loaded as " + ws->pathOf("twice.so")));
  EXPECT_FALSE(exists(ws->path()));
}

TEST(LibraryCopyTest, ElfImageThatDoesNotParseIsRefusedBeforeDlopen) {
  // Its DT_SONAME cannot be checked, so it is not loaded.
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  std::string image = readTestFile(kLibz);
  ASSERT_GT(image.size(), static_cast<size_t>(EI_CLASS));
  image[EI_CLASS] = ELFCLASS32;
  absl::StatusOr<void*> handle = ws->loadImage("elf32.so", image);
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(handle.status().message()),
              HasSubstr(ws->pathOf("elf32.so") + ": 32-bit ELF is not supported"));
  EXPECT_EQ(::dlopen(ws->pathOf("elf32.so").c_str(), RTLD_NOW | RTLD_NOLOAD), nullptr);
  EXPECT_FALSE(exists(ws->path()));
}

TEST(LibraryCopyTest, GarbageImageFailsWithDlerrorAndLeavesNoFile) {
  std::unique_ptr<LibraryWorkspace> ws = makeWorkspace();
  ASSERT_NE(ws, nullptr);
  const std::string garbage(256, 'x');  // long enough for ld.so to read a header
  absl::StatusOr<void*> handle = ws->loadImage("garbage.so", garbage);
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(handle.status().message()), HasSubstr("dlopen of " + ws->pathOf("garbage.so")));
  EXPECT_THAT(std::string(handle.status().message()), HasSubstr("invalid ELF header"));
  EXPECT_FALSE(exists(ws->path()));
}

}  // namespace
}  // namespace pyfleet::internal
