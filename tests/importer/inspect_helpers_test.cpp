// File: inspect_helpers_test.cpp
//
// Unit tests of pyfleet-inspect's helpers: GlobGroup (torch.package globs), DirectoryTree
// (Directory.__str__) and PickleGlobalModules (the opcode walker). Expected strings were
// produced with torch 1.13's Python implementations; test_pyfleet_inspect.py compares the
// whole tool against torch on real packages.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/tools/directory_tree.h"
#include "runtime/tools/glob_group.h"
#include "runtime/tools/pickle_globals.h"

namespace pyfleet::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

GlobGroup Glob(std::vector<std::string> include, std::vector<std::string> exclude = {}) {
  absl::StatusOr<GlobGroup> g = GlobGroup::Create(std::move(include), std::move(exclude), '/');
  EXPECT_TRUE(g.ok()) << g.status();
  return *std::move(g);
}

TEST(GlobGroupTest, DoubleStarMatchesWholeNonEmptySegments) {
  GlobGroup g = Glob({"a/**/b*"});
  EXPECT_TRUE(g.matches("a/b"));
  EXPECT_TRUE(g.matches("a/x/b1"));
  EXPECT_TRUE(g.matches("a/x/y/bz"));
  EXPECT_FALSE(g.matches("a/x/c"));
  EXPECT_FALSE(g.matches("a//b"));
  EXPECT_FALSE(g.matches("b"));
}

TEST(GlobGroupTest, BareDoubleStarNeverMatchesEmptySegments) {
  GlobGroup g = Glob({"**"});
  EXPECT_FALSE(g.matches(""));
  EXPECT_TRUE(g.matches("a"));
  EXPECT_FALSE(g.matches("a//b"));
  EXPECT_FALSE(g.matches("/a"));
}

TEST(GlobGroupTest, SingleStarStaysInsideOneSegment) {
  GlobGroup g = Glob({"*"});
  EXPECT_TRUE(g.matches(""));
  EXPECT_TRUE(g.matches("a"));
  EXPECT_FALSE(g.matches("a/b"));
}

TEST(GlobGroupTest, OnlyStarIsSpecial) {
  GlobGroup g = Glob({"a.?[x]*"});
  EXPECT_TRUE(g.matches("a.?[x]"));
  EXPECT_FALSE(g.matches("ab?[x]"));
  EXPECT_TRUE(g.matches("a.?[x]yz"));
}

TEST(GlobGroupTest, ExcludeWinsOverInclude) {
  GlobGroup g = Glob({"pkg/**"}, {"**/*.pkl", "pkg/secret"});
  EXPECT_TRUE(g.matches("pkg/a.py"));
  EXPECT_FALSE(g.matches("pkg/data/x.pkl"));
  EXPECT_FALSE(g.matches("pkg/secret"));
  EXPECT_FALSE(Glob({}).matches("anything"));
}

TEST(GlobGroupTest, DoubleStarInsideSegmentIsRejectedWithTorchsMessage) {
  absl::StatusOr<GlobGroup> g = GlobGroup::Create({"a/b**"}, {}, '/');
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.status().message(), "** can only appear as an entire path segment");
}

TEST(GlobGroupTest, WildcardMatchBacktracks) {
  EXPECT_TRUE(WildcardMatch("*ab*ab", "xabyabab"));
  EXPECT_FALSE(WildcardMatch("*ab*abc", "xabyabab"));
  EXPECT_TRUE(WildcardMatch("**", ""));
}

TEST(DirectoryTreeTest, PrintsFoldersBeforeFilesSorted) {
  DirectoryTree t("pkg");
  for (const char* f : {"d/x", "f", "d/e/y"}) t.addFile(f);
  EXPECT_EQ(t.toString(),
            "─── pkg\n    ├── d\n    │   ├── e\n    │   │   └── y\n    │   └── x\n    └── f\n");
}

TEST(DirectoryTreeTest, PathThroughAFileDescendsIntoIt) {
  DirectoryTree t("pkg");
  for (const char* f : {"a", "a/b", "c/d"}) t.addFile(f);
  EXPECT_EQ(t.toString(), "─── pkg\n    ├── c\n    │   └── d\n    └── a\n");
  EXPECT_TRUE(t.hasFile("a/b"));  // as torch: the file node holds the child
}

TEST(DirectoryTreeTest, FileReplacesFolderOfSameName) {
  DirectoryTree t("pkg");
  t.addFile("a/b");
  t.addFile("a");
  EXPECT_EQ(t.toString(), "─── pkg\n    └── a\n");
  EXPECT_FALSE(t.hasFile("a/b"));
}

TEST(DirectoryTreeTest, HasFileFindsFilesAndFolders) {
  DirectoryTree t("pkg");
  t.addFile("x/y/z.py");
  EXPECT_TRUE(t.hasFile("x"));
  EXPECT_TRUE(t.hasFile("x/y/z.py"));
  EXPECT_FALSE(t.hasFile("x/z.py"));
  EXPECT_FALSE(t.hasFile(""));
}

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

TEST(PickleGlobalModulesTest, Protocol0GlobalAndInst) {
  absl::StatusOr<std::vector<std::string>> m =
      PickleGlobalModules("cpf.mod\nK\n(tR(ipf.inst\nCls\n(lp0\ng0\na.");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(*m, ElementsAre("pf.inst", "pf.mod"));
}

TEST(PickleGlobalModulesTest, StackGlobalOperandsFromMemo) {
  // PROTO 4, "mod" MEMOIZE, "Name" MEMOIZE, STACK_GLOBAL MEMOIZE, BINGET 0, BINGET 1,
  // STACK_GLOBAL, "other" "X" STACK_GLOBAL, STOP.
  std::string p = Bytes({0x80, 4, 0x8c, 3}) + "mod" + Bytes({0x94, 0x8c, 4}) + "Name" +
                  Bytes({0x94, 0x93, 0x94, 'h', 0, 'h', 1, 0x93, 0x8c, 5}) + "other" +
                  Bytes({0x8c, 1, 'X', 0x93, '.'});
  absl::StatusOr<std::vector<std::string>> m = PickleGlobalModules(p);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(*m, ElementsAre("mod", "other"));
}

TEST(PickleGlobalModulesTest, EmptyPickleHasNoGlobals) {
  absl::StatusOr<std::vector<std::string>> m = PickleGlobalModules(Bytes({0x80, 2, ')', '.'}));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->empty());
}

struct BadPickle {
  std::string bytes;
  std::string message;
};

class PickleGlobalModulesBadInputTest : public ::testing::TestWithParam<BadPickle> {};

TEST_P(PickleGlobalModulesBadInputTest, FailsWithOffsetAndReason) {
  absl::StatusOr<std::vector<std::string>> m = PickleGlobalModules(GetParam().bytes);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("pickle offset "));
  EXPECT_THAT(std::string(m.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PickleGlobalModulesBadInputTest,
    ::testing::Values(BadPickle{"", "without STOP"},
                      BadPickle{Bytes({0x8c, 16, 'a', 'b'}), "runs past the end"},
                      BadPickle{Bytes({0xff}), "unknown opcode"},
                      BadPickle{Bytes({'K', 1, 'K', 2, 0x93, '.'}), "not strings"},
                      BadPickle{"0.", "stack underflow"},
                      BadPickle{Bytes({'h', 5, '.'}), "memo key 5 not found"},
                      BadPickle{"t.", "no MARK"},
                      BadPickle{"cmod_without_newline", "unterminated line"}));

}  // namespace
}  // namespace pyfleet::internal
