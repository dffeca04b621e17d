// File: library_dir_test.cpp
//
// The library-copy directory ($PYFLEET_TMPDIR) unusable at start-up: a path under a
// regular file, a missing directory, a read-only mount, a full tmpfs (too small for the
// interpreter library; too small for libtorch_python's copy, which fails inside
// `import torch`), a noexec mount. Each is a pyfleet::Error from the manager's (or the
// interpreter's) construction naming the directory, the errno's text and name and where
// the directory came from (Note [Start-up errors name the copy directory] in
// loader/library_copy.h); never a crash, and the process starts interpreters elsewhere
// afterwards.
//
// The mounts come from library_dir_check.sh, which runs this binary in a private mount
// namespace (unshare) and passes their paths as PYFLEET_FAULT_{RO,TINY,SMALL,NOEXEC}_DIR;
// without one (no unshare allowed) those cases are skipped, the others still run.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "pyfleet/pyfleet.h"
#include "tests/faults/fault_test_util.h"

namespace pyfleet {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::ErrorOf;
using testing::ScopedEnv;

std::string MountedDir(const char* variable) {
  const char* dir = std::getenv(variable);
  return dir != nullptr ? dir : "";
}

// A manager of one interpreter started with PYFLEET_TMPDIR=`dir`: its error.
Error StartError(const std::string& dir) {
  ScopedEnv env("PYFLEET_TMPDIR", dir.c_str());
  return ErrorOf([] { InterpreterManager manager(1); });
}

TEST(LibraryDirFaultTest, PathUnderARegularFile) {
  char file[] = "/tmp/pyfleet-fault-file-XXXXXX";
  const int fd = ::mkstemp(file);
  ASSERT_GE(fd, 0);
  ::close(fd);
  const std::string dir = std::string(file) + "/copies";
  Error e = StartError(dir);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(e.status().message()),
              AllOf(HasSubstr("creating a private directory " + dir + "/pyfleet-"),
                    HasSubstr("Not a directory (ENOTDIR 20)"), HasSubstr("from $PYFLEET_TMPDIR")));
  std::remove(file);
}

TEST(LibraryDirFaultTest, MissingDirectory) {
  Error e = StartError("/nonexistent-pyfleet-fault-dir/copies");
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(e.status().message()),
              AllOf(HasSubstr("/nonexistent-pyfleet-fault-dir/copies"), HasSubstr("(ENOENT 2)"),
                    HasSubstr("from $PYFLEET_TMPDIR")));
}

TEST(LibraryDirFaultTest, ReadOnlyMount) {
  const std::string dir = MountedDir("PYFLEET_FAULT_RO_DIR");
  if (dir.empty()) GTEST_SKIP() << "no read-only mount (library_dir_check.sh could not unshare)";
  Error e = StartError(dir);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied);  // EROFS
  EXPECT_THAT(std::string(e.status().message()),
              AllOf(HasSubstr(dir + "/pyfleet-"), HasSubstr("Read-only file system (EROFS 30)"),
                    HasSubstr("from $PYFLEET_TMPDIR")));
}

TEST(LibraryDirFaultTest, FullTmpfsRefusesTheInterpreterLibrary) {
  const std::string dir = MountedDir("PYFLEET_FAULT_TINY_DIR");  // 1 MiB
  if (dir.empty()) GTEST_SKIP() << "no tiny tmpfs (library_dir_check.sh could not unshare)";
  ScopedEnv env("PYFLEET_TMPDIR", dir.c_str());
  auto libraries = NativeLibraries::create();  // the directory itself is made
  Error e = ErrorOf([&] { Interpreter::create(libraries); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(e.status().message()),
              AllOf(HasSubstr("writing " + dir + "/pyfleet-"), HasSubstr("interpreter.so"),
                    HasSubstr("No space left on device (ENOSPC 28)"), HasSubstr("from $PYFLEET_TMPDIR")));
}

TEST(LibraryDirFaultTest, FullTmpfsDuringImportTorch) {
  // Room for the interpreter library's copy, not for libtorch_python's (~25 MB).
  const std::string dir = MountedDir("PYFLEET_FAULT_SMALL_DIR");
  if (dir.empty()) GTEST_SKIP() << "no small tmpfs (library_dir_check.sh could not unshare)";
  Error e = StartError(dir);
  EXPECT_THAT(std::string(e.status().message()),
              AllOf(HasSubstr(dir + "/pyfleet-"), HasSubstr("No space left on device (ENOSPC 28)"),
                    HasSubstr("from $PYFLEET_TMPDIR")));
  // It failed inside `import torch`: an extension's copy could not be written.
  EXPECT_EQ(e.pythonType(), "builtins.ImportError");
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
}

TEST(LibraryDirFaultTest, NoexecMount) {
  const std::string dir = MountedDir("PYFLEET_FAULT_NOEXEC_DIR");
  if (dir.empty()) GTEST_SKIP() << "no noexec mount (library_dir_check.sh could not unshare)";
  Error e = StartError(dir);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(e.status().message()),
              AllOf(HasSubstr("dlopen of " + dir + "/pyfleet-"), HasSubstr("mounted noexec")));
}

// Last in the file (gtest runs tests in order within a binary unless shuffled; it holds
// in any order): after all of the above, interpreters start and serve.
TEST(LibraryDirFaultTest, ProcessStartsInterpretersAfterwards) {
  ScopedEnv env("PYFLEET_TMPDIR", nullptr);
  InterpreterManager manager(1);
  testing::RegisterFaultFunctions(manager);
  testing::ExpectEveryInterpreterServes(manager);
}

}  // namespace
}  // namespace pyfleet
