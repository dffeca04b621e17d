// Tests for loader/library_resolver.h: DT_NEEDED names resolve to the files ld.so would
// load (default directories, DT_RUNPATH and DT_RPATH with $ORIGIN), Python-dependent
// libraries are told apart, and files of the wrong kind are skipped or rejected with
// their code (Note [Resolving DT_NEEDED like ld.so]).
#include "loader/library_resolver.h"

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loader_test_util.h"

namespace pyfleet::internal {
namespace {

using ::pyfleet::internal::testing::kLibz;
using ::pyfleet::internal::testing::readTestFile;
using ::pyfleet::internal::testing::realPath;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::vector<std::string> kDefaultDirs = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                               "/lib", "/usr/lib"};

std::string testlibsDir() { return dirName(realPath(PYFLEET_TEST_FAKE_INTERPRETER)); }

// ElfFile::parse of `bytes`, which must outlive the result.
ElfFile parseOrDie(const std::string& bytes, const std::string& name) {
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, name);
  EXPECT_TRUE(elf.ok()) << elf.status();
  return *std::move(elf);
}

TEST(LibraryResolverTest, PathHelpersFollowLdSo) {
  EXPECT_EQ(dirName("/usr/lib/libz.so.1"), "/usr/lib");
  EXPECT_EQ(dirName("/libz.so.1"), "/");
  EXPECT_EQ(dirName("libz.so.1"), ".");
  EXPECT_EQ(expandOrigin("$ORIGIN/../lib:${ORIGIN}:/opt", "/a/b"), "/a/b/../lib:/a/b:/opt");
  EXPECT_TRUE(hasOrigin("$ORIGIN/x"));
  EXPECT_TRUE(hasOrigin("${ORIGIN}"));
  EXPECT_FALSE(hasOrigin("/usr/lib:$LIB"));
  absl::StatusOr<std::string> missing = canonicalPath("/nonexistent/libfoo.so");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/libfoo.so"));
}

TEST(LibraryResolverTest, ResolvesLibzByItsNeededNameInTheDefaultDirectories) {
  const std::string bytes = readTestFile(kLibz);
  const ElfFile libz = parseOrDie(bytes, kLibz);
  EXPECT_EQ(searchDirs(libz, "/lib/x86_64-linux-gnu"), kDefaultDirs);  // no RPATH/RUNPATH

  LibraryResolver resolver;
  absl::StatusOr<std::optional<ResolvedLibrary>> found = resolver.resolveNeeded("libz.so.1", kDefaultDirs);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  // The canonical file: /lib is /usr/lib on Debian, libz.so.1 a link to libz.so.1.2.x.
  EXPECT_THAT((*found)->path, StartsWith("/usr/lib/x86_64-linux-gnu/libz.so.1."));
  EXPECT_EQ((*found)->path, realPath(kLibz));
  EXPECT_FALSE((*found)->info.python_dependent);
  EXPECT_EQ((*found)->info.exported_symbol, libz.firstExportedSymbol());
  EXPECT_FALSE((*found)->info.exported_symbol.empty());
  EXPECT_TRUE((*found)->info.defines_symbols);
  EXPECT_TRUE((*found)->info.needed.empty());  // only kept for a library exporting nothing

  // A name with '/' is a path, searched nowhere else.
  absl::StatusOr<std::optional<ResolvedLibrary>> by_path = resolver.resolveNeeded(kLibz, {});
  ASSERT_TRUE(by_path.ok()) << by_path.status();
  ASSERT_TRUE(by_path->has_value());
  EXPECT_EQ((*by_path)->path, realPath(kLibz));
}

TEST(LibraryResolverTest, HonoursRunpathWithOrigin) {
  // fake_plain_extension has DT_RUNPATH "$ORIGIN" and needs the helper next to it.
  const std::string bytes = readTestFile(PYFLEET_TEST_FAKE_PLAIN_EXTENSION);
  const ElfFile ext = parseOrDie(bytes, "fake_plain_extension");
  ASSERT_EQ(ext.runpath(), std::optional<std::string>("$ORIGIN"));
  const std::string origin = dirName(realPath(PYFLEET_TEST_FAKE_PLAIN_EXTENSION));
  const std::vector<std::string> dirs = searchDirs(ext, origin);
  ASSERT_EQ(dirs.size(), 5u);
  EXPECT_EQ(dirs[0], origin);

  LibraryResolver resolver;
  absl::StatusOr<std::optional<ResolvedLibrary>> helper =
      resolver.resolveNeeded("libpyfleet_test_origin_helper.so", dirs);
  ASSERT_TRUE(helper.ok()) << helper.status();
  ASSERT_TRUE(helper->has_value());
  EXPECT_EQ((*helper)->path, realPath(PYFLEET_TEST_ORIGIN_HELPER));
  EXPECT_FALSE((*helper)->info.python_dependent);
  EXPECT_EQ((*helper)->info.exported_symbol, "pyfleet_test_origin_helper");
  // Without the expanded $ORIGIN it is nowhere ld.so would look.
  absl::StatusOr<std::optional<ResolvedLibrary>> without =
      resolver.resolveNeeded("libpyfleet_test_origin_helper.so", kDefaultDirs);
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ(*without, std::nullopt);
}

TEST(LibraryResolverTest, UsesRpathWhenThereIsNoRunpath) {
  // soname_user is linked with --disable-new-dtags: DT_RPATH "$ORIGIN", no DT_RUNPATH.
  const std::string bytes = readTestFile(PYFLEET_TEST_SONAME_USER);
  const ElfFile user = parseOrDie(bytes, "soname_user");
  ASSERT_EQ(user.runpath(), std::nullopt);
  ASSERT_EQ(user.rpath(), std::optional<std::string>("$ORIGIN"));
  const std::vector<std::string> dirs = searchDirs(user, testlibsDir());
  EXPECT_EQ(dirs.front(), testlibsDir());
  LibraryResolver resolver;
  absl::StatusOr<std::optional<ResolvedLibrary>> target =
      resolver.resolveNeeded("libpyfleet_test_soname_target.so", dirs);
  ASSERT_TRUE(target.ok()) << target.status();
  ASSERT_TRUE(target->has_value());
  EXPECT_EQ((*target)->path, realPath(PYFLEET_TEST_SONAME_TARGET));
}

TEST(LibraryResolverTest, ReportsWhichLibrariesDependOnPython) {
  LibraryResolver resolver;
  absl::StatusOr<std::optional<LibraryInfo>> dependency =
      resolver.libraryInfo(realPath(PYFLEET_TEST_FAKE_PYTHON_DEPENDENCY));
  ASSERT_TRUE(dependency.ok()) << dependency.status();
  ASSERT_TRUE(dependency->has_value());
  EXPECT_TRUE((*dependency)->python_dependent);  // undefined PyLong_FromLong
  absl::StatusOr<std::optional<LibraryInfo>> extension =
      resolver.libraryInfo(realPath(PYFLEET_TEST_FAKE_PLAIN_EXTENSION));
  ASSERT_TRUE(extension.ok()) << extension.status();
  ASSERT_TRUE(extension->has_value());
  EXPECT_TRUE((*extension)->python_dependent);
  absl::StatusOr<std::optional<LibraryInfo>> libz = resolver.libraryInfo(realPath(kLibz));
  ASSERT_TRUE(libz.ok()) << libz.status();
  ASSERT_TRUE(libz->has_value());
  EXPECT_FALSE((*libz)->python_dependent);
  // The interpreter library defines Py* symbols; it does not need them.
  absl::StatusOr<LibraryInfo> interpreter = LibraryResolver::readLibraryInfo(PYFLEET_TEST_FAKE_INTERPRETER);
  ASSERT_TRUE(interpreter.ok()) << interpreter.status();
  EXPECT_FALSE(interpreter->python_dependent);
}

TEST(LibraryResolverTest, LibraryThatExportsNothingKeepsWhatItNeeds) {
  absl::StatusOr<LibraryInfo> forwarder =
      LibraryResolver::readLibraryInfo(realPath(PYFLEET_TEST_SCOPE_FORWARDER_GLOBAL));
  ASSERT_TRUE(forwarder.ok()) << forwarder.status();
  EXPECT_EQ(forwarder->exported_symbol, "");
  EXPECT_FALSE(forwarder->defines_symbols);
  EXPECT_THAT(forwarder->needed, Contains("libpyfleet_test_scope_global.so"));
  ASSERT_FALSE(forwarder->search_dirs.empty());
  EXPECT_EQ(forwarder->search_dirs.front(), testlibsDir());  // its DT_RUNPATH $ORIGIN
}

TEST(LibraryResolverTest, NameThatIsNowhereIsNotFound) {
  LibraryResolver resolver;
  absl::StatusOr<std::optional<ResolvedLibrary>> none =
      resolver.resolveNeeded("libpyfleet_no_such_library.so.7", kDefaultDirs);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, std::nullopt);
  absl::StatusOr<std::optional<ResolvedLibrary>> no_path =
      resolver.resolveNeeded("/nonexistent/libpyfleet_no_such_library.so.7", kDefaultDirs);
  ASSERT_TRUE(no_path.ok()) << no_path.status();
  EXPECT_EQ(*no_path, std::nullopt);
}

TEST(LibraryResolverTest, FilesOfTheWrongKindAreRejectedAndSkipped) {
  testing::ScratchDir scratch;
  ASSERT_FALSE(scratch.path().empty());
  const std::string text = scratch.pathOf("libpyfleet_test_origin_helper.so");
  testing::writeFile(text, "not a library\n");
  const std::string empty = scratch.pathOf("empty.so");
  testing::writeFile(empty, "");

  absl::StatusOr<LibraryInfo> not_elf = LibraryResolver::readLibraryInfo(text);
  EXPECT_EQ(not_elf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(not_elf.status().message()), HasSubstr(text + ": not an ELF file"));
  absl::StatusOr<LibraryInfo> nothing = LibraryResolver::readLibraryInfo(empty);
  EXPECT_EQ(nothing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(nothing.status().message()), HasSubstr(empty + ": empty file"));
  absl::StatusOr<LibraryInfo> missing = LibraryResolver::readLibraryInfo(scratch.pathOf("missing.so"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  // libraryInfo() and resolution skip such files, as ld.so does, and go on searching.
  LibraryResolver resolver;
  absl::StatusOr<std::optional<LibraryInfo>> info = resolver.libraryInfo(realPath(text));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(*info, std::nullopt);
  absl::StatusOr<std::optional<ResolvedLibrary>> found =
      resolver.resolveNeeded("libpyfleet_test_origin_helper.so", {scratch.path(), testlibsDir()});
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->path, realPath(PYFLEET_TEST_ORIGIN_HELPER));
}

}  // namespace
}  // namespace pyfleet::internal
