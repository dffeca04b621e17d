// Tests for loader/library_loader.h with test libraries that stand in for the interpreter
// library (fake_interpreter: defines PyLong_FromLong), a Python-dependent library like
// libtorch_python (fake_python_dependency: undefined Py* + an STB_GNU_UNIQUE symbol) and
// extension modules (fake_extension, fake_extension2, fake_plain_extension).
#include "loader/library_loader.h"

#include <dlfcn.h>
#include <fstream>
#include <link.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loader_test_util.h"

namespace pyfleet::internal {
namespace {

using ::pyfleet::internal::testing::listDir;
using ::pyfleet::internal::testing::symbolOrFail;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using PointerFn = void* (*)();

void* call(void* handle, const char* function) {
  auto fn = reinterpret_cast<PointerFn>(symbolOrFail(handle, function));
  return fn != nullptr ? fn() : nullptr;
}

class LibraryLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<LibraryLoader>> loader = LibraryLoader::Create();
    ASSERT_TRUE(loader.ok()) << loader.status();
    loader_ = *std::move(loader);
  }

  // Loads interpreter `index`'s fake interpreter copy; returns its marker's address.
  void* addInterpreter(int index) {
    absl::StatusOr<void*> handle =
        loader_->loadInterpreterLibrary(PYFLEET_TEST_FAKE_INTERPRETER, index);
    EXPECT_TRUE(handle.ok()) << handle.status();
    return handle.ok() ? symbolOrFail(*handle, "pyfleet_fake_interpreter_marker") : nullptr;
  }

  void* loadExtension(const char* path, int index) {
    absl::StatusOr<void*> handle = loader_->loadExtension(path, index);
    EXPECT_TRUE(handle.ok()) << handle.status();
    return handle.ok() ? *handle : nullptr;
  }

  std::unique_ptr<LibraryLoader> loader_;
};

TEST_F(LibraryLoaderTest, WorkspaceIsGoneAfterDestruction) {
  addInterpreter(0);
  ASSERT_NE(loadExtension(PYFLEET_TEST_FAKE_EXTENSION, 0), nullptr);
  const std::string workspace = loader_->workspacePath();
  struct stat st;
  // Every copy was unlinked after loading, and the directory exists only during loads.
  EXPECT_NE(::stat(workspace.c_str(), &st), 0);
  loader_.reset();
  EXPECT_NE(::stat(workspace.c_str(), &st), 0);
}

TEST_F(LibraryLoaderTest, EachInterpreterGetsItsOwnLibraryCopy) {
  void* marker0 = addInterpreter(0);
  void* marker1 = addInterpreter(1);
  ASSERT_NE(marker0, nullptr);
  EXPECT_NE(marker0, marker1);
  // The unlinked copy is still reachable by its path string (ctypes.pythonapi).
  const std::string path0 = loader_->interpreterLibraryPath(0);
  EXPECT_EQ(path0, loader_->workspacePath() + "/i00000000-interpreter.so");
  void* handle0 = ::dlopen(path0.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  ASSERT_NE(handle0, nullptr) << ::dlerror();
  EXPECT_EQ(::dlsym(handle0, "pyfleet_fake_interpreter_marker"), marker0);
  // Known by that path only, not by the original's SONAME (Note [A copy is known only by
  // its own path]).
  EXPECT_EQ(testing::sonameOf(handle0), path0);
  EXPECT_EQ(::dlopen("libpyfleet_test_fake_interpreter.so", RTLD_NOW | RTLD_NOLOAD), nullptr);
  ::dlclose(handle0);
  EXPECT_EQ(loader_->interpreterLibraryPath(-1), "");
}

TEST_F(LibraryLoaderTest, ExtensionBindsToItsInterpretersPythonSymbols) {
  void* marker0 = addInterpreter(0);
  void* marker1 = addInterpreter(1);
  void* ext0 = loadExtension(PYFLEET_TEST_FAKE_PLAIN_EXTENSION, 0);
  void* ext1 = loadExtension(PYFLEET_TEST_FAKE_PLAIN_EXTENSION, 1);
  ASSERT_NE(ext0, nullptr);
  ASSERT_NE(ext1, nullptr);
  EXPECT_NE(ext0, ext1);
  EXPECT_EQ(call(ext0, "fake_plain_extension_python"), marker0);
  EXPECT_EQ(call(ext1, "fake_plain_extension_python"), marker1);
  // Its $ORIGIN helper was found next to the original although the copy lived elsewhere.
  using IntFn = int (*)();
  auto helper = reinterpret_cast<IntFn>(symbolOrFail(ext0, "fake_plain_extension_helper"));
  ASSERT_NE(helper, nullptr);
  EXPECT_EQ(helper(), 42);
}

TEST_F(LibraryLoaderTest, LibrariesWithoutPythonSymbolsStayProcessGlobal) {
  addInterpreter(0);
  addInterpreter(1);
  void* ext0 = loadExtension(PYFLEET_TEST_FAKE_PLAIN_EXTENSION, 0);
  void* ext1 = loadExtension(PYFLEET_TEST_FAKE_PLAIN_EXTENSION, 1);
  ASSERT_NE(ext0, nullptr);
  ASSERT_NE(ext1, nullptr);
  // Both copies call the one libz, loaded from its real file.
  void* zlib0 = call(ext0, "fake_plain_extension_zlib_function");
  void* zlib1 = call(ext1, "fake_plain_extension_zlib_function");
  EXPECT_EQ(zlib0, zlib1);
  Dl_info info;
  ASSERT_NE(::dladdr(zlib0, &info), 0);
  EXPECT_THAT(std::string(info.dli_fname), HasSubstr("libz.so"));
  EXPECT_THAT(std::string(info.dli_fname), ::testing::Not(HasSubstr(loader_->workspacePath())));
  // Copies: 2 interpreter libraries + 2 extensions, nothing for libz or the helper.
  EXPECT_EQ(loader_->stats().copies_loaded, 4);
}

TEST_F(LibraryLoaderTest, PythonDependentLibraryIsCopiedPerInterpreter) {
  void* marker0 = addInterpreter(0);
  void* marker1 = addInterpreter(1);
  void* ext0 = loadExtension(PYFLEET_TEST_FAKE_EXTENSION, 0);
  void* ext1 = loadExtension(PYFLEET_TEST_FAKE_EXTENSION, 1);
  ASSERT_NE(ext0, nullptr);
  ASSERT_NE(ext1, nullptr);
  EXPECT_EQ(call(ext0, "fake_extension_python"), marker0);
  EXPECT_EQ(call(ext1, "fake_extension_python"), marker1);
  // The dependency's own Py* references bind to the right interpreter too ...
  EXPECT_EQ(call(ext0, "fake_extension_dependency_python"), marker0);
  EXPECT_EQ(call(ext1, "fake_extension_dependency_python"), marker1);
  // ... and its STB_GNU_UNIQUE state is private (Note [STB_GNU_UNIQUE demotion]).
  void* unique0 = call(ext0, "fake_extension_dependency_unique");
  void* unique1 = call(ext1, "fake_extension_dependency_unique");
  ASSERT_NE(unique0, nullptr);
  EXPECT_NE(unique0, unique1);
  // The copy is known by its own path, and the original file was never loaded.
  Dl_info info;
  ASSERT_NE(::dladdr(unique0, &info), 0);
  EXPECT_THAT(std::string(info.dli_fname),
              HasSubstr(loader_->workspacePath() + "/i00000000-d0001-"));
  EXPECT_EQ(::dlopen(PYFLEET_TEST_FAKE_PYTHON_DEPENDENCY, RTLD_NOW | RTLD_NOLOAD), nullptr);
  EXPECT_NE(::access(loader_->workspacePath().c_str(), F_OK), 0);
}

TEST_F(LibraryLoaderTest, DependencyCopyIsReusedByLaterExtensions) {
  addInterpreter(0);
  void* ext = loadExtension(PYFLEET_TEST_FAKE_EXTENSION, 0);
  void* ext2 = loadExtension(PYFLEET_TEST_FAKE_EXTENSION2, 0);
  ASSERT_NE(ext, nullptr);
  ASSERT_NE(ext2, nullptr);
  EXPECT_EQ(call(ext, "fake_extension_dependency_unique"),
            call(ext2, "fake_extension_dependency_unique"));
  const LibraryLoader::Stats stats = loader_->stats();
  EXPECT_EQ(stats.copies_loaded, 4);    // interpreter + dependency + 2 extensions
  EXPECT_EQ(stats.templates_built, 4);  // interpreter library + dependency + 2 extensions
}

TEST_F(LibraryLoaderTest, TemplatesAreBuiltOncePerLibrary) {
  for (int i = 0; i < 3; ++i) addInterpreter(i);
  for (int i = 0; i < 3; ++i) ASSERT_NE(loadExtension(PYFLEET_TEST_FAKE_EXTENSION, i), nullptr);
  const LibraryLoader::Stats stats = loader_->stats();
  EXPECT_EQ(stats.templates_built, 3);  // interpreter library + extension + dependency
  EXPECT_EQ(stats.copies_loaded, 9);    // 3 x (interpreter + dependency + extension)
  EXPECT_GT(stats.template_seconds, 0);
  EXPECT_GT(stats.copy_seconds, 0);
}

TEST_F(LibraryLoaderTest, ConcurrentLoadsFromSeveralInterpreters) {
  constexpr int kInterpreters = 4;
  std::vector<void*> markers;
  for (int i = 0; i < kInterpreters; ++i) markers.push_back(addInterpreter(i));
  std::vector<void*> results(kInterpreters * 2, nullptr);
  std::vector<std::thread> threads;
  for (int i = 0; i < kInterpreters; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<void*> a = loader_->loadExtension(PYFLEET_TEST_FAKE_EXTENSION, i);
      absl::StatusOr<void*> b = loader_->loadExtension(PYFLEET_TEST_FAKE_EXTENSION2, i);
      if (a.ok()) results[2 * i] = *a;
      if (b.ok()) results[2 * i + 1] = *b;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kInterpreters; ++i) {
    ASSERT_NE(results[2 * i], nullptr) << "interpreter " << i;
    ASSERT_NE(results[2 * i + 1], nullptr) << "interpreter " << i;
    EXPECT_EQ(call(results[2 * i], "fake_extension_dependency_python"), markers[i]);
    EXPECT_EQ(call(results[2 * i], "fake_extension_dependency_unique"),
              call(results[2 * i + 1], "fake_extension_dependency_unique"));
  }
  const LibraryLoader::Stats stats = loader_->stats();
  EXPECT_EQ(stats.templates_built, 4);  // interpreter library + dependency + 2 extensions
  EXPECT_EQ(stats.copies_loaded, kInterpreters * 4);
}

TEST_F(LibraryLoaderTest, LaterCopiesComeFromTheFileTheTemplateWasMadeFrom) {
  // A library replaced on disk after its template was built (a package upgrade renames
  // a new file over the path) must not change later copies: they are the template's
  // file plus its changes, read through the descriptor kept open since then.
  testing::ScratchDir dir;
  const std::string extension = dir.pathOf("libpyfleet_test_fake_extension.so");
  const std::string dependency = dir.pathOf("libpyfleet_test_fake_python_dependency.so");
  for (const auto& [from, to] : {std::pair<std::string, std::string>{PYFLEET_TEST_FAKE_EXTENSION, extension},
                                 {PYFLEET_TEST_FAKE_PYTHON_DEPENDENCY, dependency}}) {
    const std::string bytes = testing::readTestFile(from);
    FILE* f = std::fopen(to.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
  }
  void* marker0 = addInterpreter(0);
  void* marker1 = addInterpreter(1);
  void* first = loadExtension(extension.c_str(), 0);
  ASSERT_NE(first, nullptr);
  // Replace the extension by an unrelated library, as `mv new old` does.
  const std::string replacement = dir.pathOf("replacement.so");
  {
    const std::string bytes = testing::readTestFile(PYFLEET_TEST_FAKE_PLAIN_EXTENSION);
    FILE* f = std::fopen(replacement.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  ASSERT_EQ(::rename(replacement.c_str(), extension.c_str()), 0);
  void* second = loadExtension(extension.c_str(), 1);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(call(first, "fake_extension_dependency_python"), marker0);
  EXPECT_EQ(call(second, "fake_extension_dependency_python"), marker1);  // the old library's code
}

TEST_F(LibraryLoaderTest, ALibraryRewrittenInPlaceIsRefusedForLaterCopies) {
  // Rewriting the file itself (same inode: `cp new old`) cannot be followed: later copies
  // would mix new bytes with the template's old changes. They fail with a clear error.
  testing::ScratchDir dir;
  const std::string extension = dir.pathOf("libpyfleet_test_fake_extension.so");
  const std::string dependency = dir.pathOf("libpyfleet_test_fake_python_dependency.so");
  auto put = [](const std::string& from, const std::string& to) {
    const std::string bytes = testing::readTestFile(from);
    FILE* f = std::fopen(to.c_str(), "wb");  // truncates in place when it exists
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
  };
  put(PYFLEET_TEST_FAKE_EXTENSION, extension);
  put(PYFLEET_TEST_FAKE_PYTHON_DEPENDENCY, dependency);
  addInterpreter(0);
  addInterpreter(1);
  ASSERT_NE(loadExtension(extension.c_str(), 0), nullptr);
  // Rewriting its bytes for real would also change the pages interpreter 0's copy runs
  // on (its code maps the original file), as it would for any process that has the
  // library loaded; a new modification time is what such a rewrite leaves, and is enough.
  const struct timespec later[2] = {{0, UTIME_OMIT}, {::time(nullptr) + 60, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, extension.c_str(), later, 0), 0);
  absl::StatusOr<void*> second = loader_->loadExtension(extension, 1);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("modified in place"));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("libpyfleet_test_fake_extension.so"));
}

TEST_F(LibraryLoaderTest, SharedPagesLeaveTheCopyFileUnlessAForkHappenedDuringTheLoad) {
  // Note [Forks while a copy is loading]. Both libraries have 1 MiB of .rodata, shared
  // with the original file once loaded; the copy's file keeps its writable data, whose
  // mapping lets us find it.
  addInterpreter(0);
  void* quiet = loadExtension(PYFLEET_TEST_BIG_RODATA, 0);
  void* forking = loadExtension(PYFLEET_TEST_BIG_RODATA_FORKING, 0);  // forks in its constructor
  ASSERT_NE(quiet, nullptr);
  ASSERT_NE(forking, nullptr);
  auto byte = [](void* handle) {
    return reinterpret_cast<unsigned char (*)(int)>(symbolOrFail(handle, "big_rodata_byte"));
  };
  EXPECT_EQ(byte(quiet)(2), 3);
  EXPECT_EQ(byte(forking)(2), 3);
  // Each copy's dynamic section lies in its own file.
  const uint64_t quiet_bytes = testing::allocatedBytesOfFileAt(testing::dynamicSectionOf(quiet));
  const uint64_t forking_bytes = testing::allocatedBytesOfFileAt(testing::dynamicSectionOf(forking));
  EXPECT_LT(quiet_bytes, uint64_t{512} << 10) << "the shared .rodata left the copy's file";
  EXPECT_GT(forking_bytes, uint64_t{1} << 20) << "a fork during the load keeps it";
}

TEST_F(LibraryLoaderTest, TwoLoadersInOneProcessDoNotCollide) {
  void* marker = addInterpreter(0);
  absl::StatusOr<std::unique_ptr<LibraryLoader>> other = LibraryLoader::Create();
  ASSERT_TRUE(other.ok()) << other.status();
  absl::StatusOr<void*> other_interp =
      (*other)->loadInterpreterLibrary(PYFLEET_TEST_FAKE_INTERPRETER, 0);
  ASSERT_TRUE(other_interp.ok()) << other_interp.status();
  void* ext = loadExtension(PYFLEET_TEST_FAKE_EXTENSION, 0);
  absl::StatusOr<void*> other_ext = (*other)->loadExtension(PYFLEET_TEST_FAKE_EXTENSION, 0);
  ASSERT_TRUE(other_ext.ok()) << other_ext.status();
  EXPECT_EQ(call(ext, "fake_extension_dependency_python"), marker);
  EXPECT_EQ(call(*other_ext, "fake_extension_dependency_python"),
            ::dlsym(*other_interp, "pyfleet_fake_interpreter_marker"));
  EXPECT_NE(call(ext, "fake_extension_dependency_unique"),
            call(*other_ext, "fake_extension_dependency_unique"));
}

TEST_F(LibraryLoaderTest, ReportsMisuseAndBadFiles) {
  absl::StatusOr<void*> early = loader_->loadExtension(PYFLEET_TEST_FAKE_EXTENSION, 0);
  EXPECT_EQ(early.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(early.status().message()), HasSubstr("interpreter 0 has no interpreter library"));

  addInterpreter(0);
  absl::StatusOr<void*> again = loader_->loadInterpreterLibrary(PYFLEET_TEST_FAKE_INTERPRETER, 0);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(loader_->loadInterpreterLibrary(PYFLEET_TEST_FAKE_INTERPRETER, -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<void*> missing_interp = loader_->loadInterpreterLibrary("/nonexistent.so", 1);
  EXPECT_EQ(missing_interp.status().code(), absl::StatusCode::kNotFound);
  // A failed interpreter load leaves the index free.
  EXPECT_NE(addInterpreter(1), nullptr);

  absl::StatusOr<void*> missing = loader_->loadExtension("/nonexistent/ext.so", 0);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/ext.so"));

  testing::ScratchDir scratch;
  const std::string text = scratch.path() + "/pyfleet-test-not-elf-" +
                           std::to_string(::getpid()) + ".so";
  FILE* f = std::fopen(text.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("not a library\n", f);
  std::fclose(f);
  absl::StatusOr<void*> bad = loader_->loadExtension(text, 0);
  std::remove(text.c_str());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("pyfleet-test-not-elf-"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr(".so: not an ELF file"));
}

}  // namespace
}  // namespace pyfleet::internal
