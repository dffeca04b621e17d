// LibraryLoader on the case it exists for: torch._C, which needs libtorch_python.so.1.13
// (undefined Py* symbols, 58 STB_GNU_UNIQUE symbols), loaded for two interpreters.
// Debian's libpython3.11.so.1.0 stands in for the interpreter library: it defines every
// Py* symbol. No interpreter is started; only the libraries are loaded and linked (their
// static constructors do run). Own binary: it maps LibTorch into the process.
#include <dlfcn.h>
#include <link.h>
#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loader/library_loader.h"
#include "loader_test_util.h"
#include "pyfleet/platform.h"

namespace pyfleet::internal {
namespace {

using ::pyfleet::internal::testing::allocatedBytesOfFileAt;
using ::pyfleet::internal::testing::dynamicSectionOf;
using ::pyfleet::internal::testing::kStdlibExtension;
using ::pyfleet::internal::testing::neededOf;
using ::pyfleet::internal::testing::objectFileOf;
using ::pyfleet::internal::testing::sonameOf;
using ::pyfleet::internal::testing::symbolOrFail;
using ::testing::HasSubstr;

constexpr char kLibpython[] = "/usr/lib/x86_64-linux-gnu/libpython" PYFLEET_PYTHON_VERSION ".so.1.0";
constexpr char kTorchC[] =
    "/usr/lib/python3/dist-packages/torch/_C" PYFLEET_PYTHON_EXT_SUFFIX;

TEST(LibraryLoaderTorchTest, TorchExtensionGetsPrivateLibtorchPythonPerInterpreter) {
  // The host links LibTorch, so it is loaded before any interpreter; load it first here
  // too, so the times below are the loader's own.
  ASSERT_NE(::dlopen("libtorch.so." PYFLEET_TORCH_SOVERSION, RTLD_NOW | RTLD_GLOBAL), nullptr) << ::dlerror();
  absl::StatusOr<std::unique_ptr<LibraryLoader>> created = LibraryLoader::Create();
  ASSERT_TRUE(created.ok()) << created.status();
  LibraryLoader& loader = **created;
  void* interp[2] = {nullptr, nullptr};
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<void*> handle = loader.loadInterpreterLibrary(kLibpython, i);
    ASSERT_TRUE(handle.ok()) << handle.status();
    interp[i] = *handle;
    // Known only by its own path (Note [A copy is known only by its own path]), not as
    // libpython3.11.so.1.0, so it cannot answer for the real libpython.
    EXPECT_EQ(sonameOf(interp[i]), loader.interpreterLibraryPath(i));
  }
  EXPECT_EQ(::dlopen("libpython" PYFLEET_PYTHON_VERSION ".so.1.0", RTLD_NOW | RTLD_NOLOAD), nullptr);
  const LibraryLoader::Stats before = loader.stats();
  void* ext[2] = {nullptr, nullptr};
  LibraryLoader::Stats step[2];
  for (int i = 0; i < 2; ++i) {
    const LibraryLoader::Stats s0 = loader.stats();
    absl::StatusOr<void*> handle = loader.loadExtension(kTorchC, i);
    ASSERT_TRUE(handle.ok()) << handle.status();
    ext[i] = *handle;
    const LibraryLoader::Stats s1 = loader.stats();
    step[i] = {s1.templates_built - s0.templates_built, s1.template_seconds - s0.template_seconds,
               s1.copies_loaded - s0.copies_loaded, s1.copy_seconds - s0.copy_seconds};
  }
  const LibraryLoader::Stats after = loader.stats();
  EXPECT_EQ(after.templates_built - before.templates_built, 2);  // torch._C + libtorch_python
  EXPECT_EQ(after.copies_loaded - before.copies_loaded, 4);      // both, per interpreter
  // Their code and read-only data run on the original files' pages: libtorch_python's
  // alone are ~11 MB per copy (Note [Sharing read-only segments with the original file]).
  EXPECT_GT(after.shared_bytes - before.shared_bytes, uint64_t{2 * 10} << 20);

  // Each interpreter has its own torch._C and libtorch_python ...
  void* init0 = symbolOrFail(ext[0], "PyInit__C");
  void* init1 = symbolOrFail(ext[1], "PyInit__C");
  EXPECT_NE(init0, init1);
  void* variable_class0 = symbolOrFail(ext[0], "THPVariableClass");
  void* variable_class1 = symbolOrFail(ext[1], "THPVariableClass");
  EXPECT_NE(variable_class0, variable_class1);
  EXPECT_THAT(objectFileOf(variable_class0),
              HasSubstr(loader.workspacePath() + "/i00000000-d0001-libtorch_python.so." PYFLEET_TORCH_SOVERSION));
  EXPECT_THAT(objectFileOf(variable_class1),
              HasSubstr(loader.workspacePath() + "/i00000001-d0001-libtorch_python.so." PYFLEET_TORCH_SOVERSION));
  // ... whose Python symbols come from that interpreter's library copy (searched first) ...
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(::dlsym(ext[i], "PyExc_TypeError"), ::dlsym(interp[i], "PyExc_TypeError"));
  }
  // ... while LibTorch itself is the one process-global copy, found in the global scope:
  // the copies do not even list it (Note [Dependencies already in the global scope]) ...
  void* cpu0 = ::dlsym(RTLD_DEFAULT, "_ZN3c1019UndefinedTensorImpl10_singletonE");
  ASSERT_NE(cpu0, nullptr);
  EXPECT_THAT(objectFileOf(cpu0), ::testing::Not(HasSubstr(loader.workspacePath())));
  for (int i = 0; i < 2; ++i) {
    const std::string copy = loader.workspacePath() + "/i0000000" + std::to_string(i) +
                             "-d0001-libtorch_python.so." PYFLEET_TORCH_SOVERSION ".0";
    void* handle = ::dlopen(copy.c_str(), RTLD_NOW | RTLD_NOLOAD);  // matched by name
    ASSERT_NE(handle, nullptr) << ::dlerror();
    const std::vector<std::string> needed = neededOf(handle);
    EXPECT_THAT(needed, ::testing::Contains(loader.interpreterLibraryPath(i)));
    EXPECT_THAT(needed, ::testing::Contains("libshm.so." PYFLEET_TORCH_SOVERSION));  // not global here: kept
    EXPECT_THAT(needed, ::testing::Not(::testing::Contains("libtorch_cpu.so." PYFLEET_TORCH_SOVERSION)));
    // libtorch.so.1.13 defines nothing but the linker's _end/_edata/__bss_start and only
    // pulls in others: global too, dropped (else its ~300-library tree is walked again).
    EXPECT_THAT(needed, ::testing::Not(::testing::Contains("libtorch.so." PYFLEET_TORCH_SOVERSION)));
    EXPECT_THAT(needed, ::testing::Not(::testing::Contains("libc10.so." PYFLEET_TORCH_SOVERSION)));
    EXPECT_THAT(needed, ::testing::Not(::testing::Contains("libstdc++.so.6")));
    ::dlclose(handle);
  }
  // ... its file keeps only what the copy still maps from it: the shared code and
  // read-only data were released (Note [Copies live in memory]) ...
  for (const char* id : {"00000000", "00000001"}) {
    const std::string copy = loader.workspacePath() + "/i" + id + "-d0001-libtorch_python.so." PYFLEET_TORCH_SOVERSION ".0";
    void* handle = ::dlopen(copy.c_str(), RTLD_NOW | RTLD_NOLOAD);  // matched by name
    ASSERT_NE(handle, nullptr) << ::dlerror();
    EXPECT_LT(allocatedBytesOfFileAt(dynamicSectionOf(handle)), uint64_t{6} << 20) << copy;
    ::dlclose(handle);
  }
  // ... and their references to their own definitions were resolved in the template
  // (Note [Binding a copy's references to itself]): libtorch_python has about 9,200.
  EXPECT_GT(after.self_bound_relocations, 8000);
  // The real libtorch_python was never loaded.
  EXPECT_EQ(::dlopen("libtorch_python.so." PYFLEET_TORCH_SOVERSION, RTLD_NOW | RTLD_NOLOAD), nullptr);

  // A stdlib extension for both, too.
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<void*> json = loader.loadExtension(kStdlibExtension, i);
    ASSERT_TRUE(json.ok()) << json.status();
  }
  for (int i = 0; i < 2; ++i) {
    std::cout << "torch._C for interpreter " << i << ": " << step[i].templates_built
              << " templates in " << step[i].template_seconds * 1e3 << " ms, "
              << step[i].copies_loaded << " copies (write + dlopen + unlink) in "
              << step[i].copy_seconds * 1e3 << " ms\n";
  }
}

}  // namespace
}  // namespace pyfleet::internal
