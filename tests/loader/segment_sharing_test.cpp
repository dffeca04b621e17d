// segment_sharing: a loaded copy's read-only segments move onto the original file's
// pages (Note [Sharing read-only segments with the original file]).
#include "loader/segment_sharing.h"

#include <dlfcn.h>
#include <elf.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loader/library_copy.h"
#include "tests/loader/loader_test_util.h"

namespace pyfleet::internal {
namespace {

using ::pyfleet::internal::testing::kLibz;
using ::pyfleet::internal::testing::readTestFile;
using ::pyfleet::internal::testing::symbolOrFail;

// Inode of the file backing the mapping that contains `address`, from /proc/self/maps.
std::string InodeAt(const void* address) {
  const auto a = reinterpret_cast<uintptr_t>(address);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode;
    in >> range >> perms >> offset >> dev >> inode;
    const size_t dash = range.find('-');
    const uintptr_t lo = std::stoull(range.substr(0, dash), nullptr, 16);
    const uintptr_t hi = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (a >= lo && a < hi) return inode;
  }
  return "";
}

std::string InodeOf(const char* path) {
  struct stat st {};
  ::stat(path, &st);
  return std::to_string(st.st_ino);
}

TEST(SegmentSharingTest, IdenticalCopySharesEveryReadOnlySegment) {
  const std::string bytes = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, kLibz);
  ASSERT_TRUE(elf.ok()) << elf.status();
  std::vector<SharedSegment> segments = findShareableSegments(*elf, bytes, {}, 0);
  int read_only_loads = 0;
  for (const Elf64_Phdr& ph : elf->programHeaders()) {
    if (ph.p_type == PT_LOAD && !(ph.p_flags & PF_W)) ++read_only_loads;
  }
  EXPECT_EQ(static_cast<int>(segments.size()), read_only_loads);
  bool has_code = false;
  for (const SharedSegment& s : segments) has_code |= (s.prot & PROT_EXEC) != 0;
  EXPECT_TRUE(has_code);
}

TEST(SegmentSharingTest, PatchedOrDifferentRangesAreNotShared) {
  const std::string bytes = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, kLibz);
  ASSERT_TRUE(elf.ok()) << elf.status();
  const std::vector<SharedSegment> all = findShareableSegments(*elf, bytes, {}, 0);
  ASSERT_FALSE(all.empty());
  const SharedSegment& first = all.front();
  // A placeholder inside the segment excludes it.
  std::vector<SharedSegment> patched =
      findShareableSegments(*elf, bytes, {first.offset + first.length / 2}, 8);
  EXPECT_EQ(patched.size(), all.size() - 1);
  // So does one differing byte.
  std::string changed = bytes;
  changed[first.offset + 1] ^= 0x5a;
  EXPECT_EQ(findShareableSegments(*elf, changed, {}, 0).size(), all.size() - 1);
}

TEST(SegmentSharingTest, LoadedCopyRunsOnTheOriginalFilesPages) {
  std::unique_ptr<LibraryWorkspace> ws = *LibraryWorkspace::create();
  absl::StatusOr<void*> handle = ws->loadFileCopy("libz-shared-copy.so", kLibz);
  ASSERT_TRUE(handle.ok()) << handle.status();
  void* version = symbolOrFail(*handle, "zlibVersion");
  const std::string copy_inode = InodeAt(version);
  EXPECT_NE(copy_inode, InodeOf(kLibz));  // the copy's own file, before sharing

  const std::string bytes = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, kLibz);
  ASSERT_TRUE(elf.ok());
  absl::StatusOr<uint64_t> shared = shareSegments(*handle, kLibz, findShareableSegments(*elf, bytes, {}, 0));
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_GT(*shared, 0u);
  EXPECT_EQ(InodeAt(version), InodeOf(kLibz));  // code now backed by the original file
  auto zlib_version = reinterpret_cast<const char* (*)()>(version);
  EXPECT_EQ(std::string(zlib_version()).rfind("1.", 0), 0u);  // still runs: same bytes
}

}  // namespace
}  // namespace pyfleet::internal
