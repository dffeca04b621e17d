// Tests for loader/global_scope.h: which libraries count as already in the process's
// global scope (Note [Dependencies already in the global scope]) and which symbols it
// defines, on libraries the test binary links and on test libraries it dlopens
// RTLD_GLOBAL or RTLD_LOCAL here.
#include "loader/global_scope.h"

#include <dlfcn.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loader/library_copy.h"
#include "loader_test_util.h"

namespace pyfleet::internal {
namespace {

using ::pyfleet::internal::testing::kLibz;
using ::pyfleet::internal::testing::realPath;

const std::vector<std::string> kDefaultDirs = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                               "/lib", "/usr/lib"};

// What the resolver says about DT_NEEDED `name` looked up in the test libraries' folder
// and the default directories (fails the test if it is not found).
LibraryInfo infoOf(LibraryResolver& resolver, const std::string& name) {
  std::vector<std::string> dirs = {dirName(realPath(PYFLEET_TEST_FAKE_INTERPRETER))};
  dirs.insert(dirs.end(), kDefaultDirs.begin(), kDefaultDirs.end());
  absl::StatusOr<std::optional<ResolvedLibrary>> found = resolver.resolveNeeded(name, dirs);
  EXPECT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(found.ok() && found->has_value()) << name << " not found";
  return found.ok() && found->has_value() ? (*found)->info : LibraryInfo{};
}

// inGlobalScope() that fails the test on an error.
bool global(LibraryResolver& resolver, const std::string& name) {
  absl::StatusOr<bool> in = inGlobalScope(name, infoOf(resolver, name), resolver);
  EXPECT_TRUE(in.ok()) << in.status();
  return in.ok() && *in;
}

void* loadOrFail(const char* path, int mode) {
  void* handle = ::dlopen(path, mode);
  EXPECT_NE(handle, nullptr) << ::dlerror();
  return handle;
}

TEST(GlobalScopeTest, GlobalScopeHandleSeesTheProcess) {
  ASSERT_NE(globalScopeHandle(), nullptr);
  EXPECT_EQ(globalScopeHandle(), globalScopeHandle());
  EXPECT_TRUE(definedInGlobalScope("malloc"));
  EXPECT_TRUE(definedInGlobalScope("zlibVersion"));  // libz is linked (loader/base's CRC-32)
  EXPECT_FALSE(definedInGlobalScope("pyfleet_no_such_symbol_anywhere"));
}

TEST(GlobalScopeTest, LibrariesTheBinaryLinksAreGlobal) {
  LibraryResolver resolver;
  EXPECT_TRUE(global(resolver, "libstdc++.so.6"));
  EXPECT_TRUE(global(resolver, "libz.so.1"));
  EXPECT_TRUE(global(resolver, "libc.so.6"));
  const LibraryInfo libz = infoOf(resolver, "libz.so.1");
  EXPECT_TRUE(loadedInGlobalScope("libz.so.1", libz.exported_symbol));
  EXPECT_TRUE(loadedInGlobalScope(kLibz, libz.exported_symbol));  // by path, too
  // The probe must land in the library itself, not merely be defined somewhere.
  EXPECT_FALSE(loadedInGlobalScope("libz.so.1", "malloc"));
  EXPECT_FALSE(loadedInGlobalScope("libz.so.1", ""));
  EXPECT_FALSE(loadedInGlobalScope("", libz.exported_symbol));
}

TEST(GlobalScopeTest, LibraryThatIsNotLoadedIsNotGlobal) {
  // No test loads the original fake_python_dependency (LibraryLoaderTest checks that).
  ASSERT_EQ(::dlopen(PYFLEET_TEST_FAKE_PYTHON_DEPENDENCY, RTLD_NOW | RTLD_NOLOAD), nullptr);
  LibraryResolver resolver;
  EXPECT_FALSE(global(resolver, "libpyfleet_test_fake_python_dependency.so"));
  EXPECT_EQ(::dlopen(PYFLEET_TEST_FAKE_PYTHON_DEPENDENCY, RTLD_NOW | RTLD_NOLOAD), nullptr);
}

TEST(GlobalScopeTest, RtldGlobalLibraryIsGlobalAndRtldLocalIsNot) {
  LibraryResolver resolver;
  ASSERT_NE(loadOrFail(PYFLEET_TEST_SCOPE_GLOBAL, RTLD_NOW | RTLD_GLOBAL), nullptr);
  ASSERT_NE(loadOrFail(PYFLEET_TEST_SCOPE_LOCAL, RTLD_NOW | RTLD_LOCAL), nullptr);
  EXPECT_EQ(infoOf(resolver, "libpyfleet_test_scope_global.so").exported_symbol,
            "pyfleet_test_scope_global_probe");
  EXPECT_TRUE(global(resolver, "libpyfleet_test_scope_global.so"));
  EXPECT_TRUE(definedInGlobalScope("pyfleet_test_scope_global_probe"));
  // Loaded, and known by its name, but an RTLD_LOCAL copy never looks in it.
  EXPECT_FALSE(global(resolver, "libpyfleet_test_scope_local.so"));
  EXPECT_FALSE(definedInGlobalScope("pyfleet_test_scope_local_probe"));
}

TEST(GlobalScopeTest, LibraryWithOnlyWeakDefinitionsIsNotCountedGlobal) {
  // Nothing to probe with: kept as a dependency, even though it is RTLD_GLOBAL.
  LibraryResolver resolver;
  ASSERT_NE(loadOrFail(PYFLEET_TEST_SCOPE_WEAK, RTLD_NOW | RTLD_GLOBAL), nullptr);
  const LibraryInfo weak = infoOf(resolver, "libpyfleet_test_scope_weak.so");
  EXPECT_EQ(weak.exported_symbol, "");
  EXPECT_TRUE(weak.defines_symbols);
  EXPECT_TRUE(definedInGlobalScope("pyfleet_test_scope_weak_probe"));
  EXPECT_FALSE(global(resolver, "libpyfleet_test_scope_weak.so"));
}

TEST(GlobalScopeTest, LibraryThatDefinesNothingIsGlobalWhenAllItNeedsIs) {
  LibraryResolver resolver;
  ASSERT_NE(loadOrFail(PYFLEET_TEST_SCOPE_GLOBAL, RTLD_NOW | RTLD_GLOBAL), nullptr);
  const LibraryInfo forwarder = infoOf(resolver, "libpyfleet_test_scope_forwarder_global.so");
  ASSERT_EQ(forwarder.exported_symbol, "");
  ASSERT_FALSE(forwarder.defines_symbols);
  // Not loaded yet: not global, whatever it needs.
  EXPECT_FALSE(global(resolver, "libpyfleet_test_scope_forwarder_global.so"));
  // Loaded (RTLD_LOCAL: it binds nothing itself), pulling in only global libraries.
  ASSERT_NE(loadOrFail(PYFLEET_TEST_SCOPE_FORWARDER_GLOBAL, RTLD_NOW | RTLD_LOCAL), nullptr);
  EXPECT_TRUE(global(resolver, "libpyfleet_test_scope_forwarder_global.so"));
  // One that pulls in an RTLD_LOCAL library is not.
  ASSERT_NE(loadOrFail(PYFLEET_TEST_SCOPE_FORWARDER_LOCAL, RTLD_NOW | RTLD_LOCAL), nullptr);
  EXPECT_FALSE(global(resolver, "libpyfleet_test_scope_forwarder_local.so"));
}

TEST(GlobalScopeTest, ACopyDoesNotMakeItsOriginalsNameGlobal) {
  // Note [A copy is known only by its own path]: a private copy of soname_target (never
  // loaded by anything else) answers neither dlopen(RTLD_NOLOAD) of its original's
  // DT_SONAME nor the global-scope probe.
  absl::StatusOr<std::unique_ptr<LibraryWorkspace>> ws = LibraryWorkspace::create();
  ASSERT_TRUE(ws.ok()) << ws.status();
  absl::StatusOr<void*> copy = (*ws)->loadFileCopy("scope-target-copy.so", PYFLEET_TEST_SONAME_TARGET);
  ASSERT_TRUE(copy.ok()) << copy.status();
  // (The real one is loaded only if LibraryCopyTest ran first in this process, as a
  // RTLD_LOCAL dependency: then it is the one found.)
  void* by_name = ::dlopen("libpyfleet_test_soname_target.so", RTLD_NOW | RTLD_NOLOAD);
  EXPECT_NE(by_name, *copy);
  if (by_name != nullptr) ::dlclose(by_name);
  LibraryResolver resolver;
  EXPECT_FALSE(global(resolver, "libpyfleet_test_soname_target.so"));
}

}  // namespace
}  // namespace pyfleet::internal
