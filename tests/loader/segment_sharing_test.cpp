// segment_sharing: a loaded copy's read-only segments move onto the original file's
// pages (Note [Sharing read-only segments with the original file]).
#include "loader/segment_sharing.h"

#include <dlfcn.h>
#include <elf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loader/library_copy.h"
#include "tests/common/proc_maps.h"
#include "tests/loader/loader_test_util.h"

namespace pyfleet::internal {
namespace {

using ::pyfleet::internal::testing::kLibtorchPython;
using ::pyfleet::internal::testing::kLibz;
using ::pyfleet::internal::testing::readTestFile;
using ::pyfleet::internal::testing::symbolOrFail;

// Inode of the file backing the mapping that contains `address` ("" if none).
std::string InodeAt(const void* address) {
  const std::optional<::pyfleet::testing::Mapping> m = ::pyfleet::testing::mappingContaining(address);
  return m ? std::to_string(m->inode) : "";
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

// Whether the page range [offset, offset + length) of a file touches any PT_LOAD's pages.
bool touchesLoadSegment(const ElfFile& elf, uint64_t offset, uint64_t length) {
  const uint64_t page = ::sysconf(_SC_PAGESIZE);
  for (const Elf64_Phdr& ph : elf.programHeaders()) {
    if (ph.p_type != PT_LOAD || ph.p_filesz == 0) continue;
    const uint64_t begin = ph.p_offset - ph.p_offset % page;
    const uint64_t end = (ph.p_offset + ph.p_filesz + page - 1) / page * page;
    if (offset < end && offset + length > begin) return true;
  }
  return false;
}

TEST(SegmentSharingTest, ReleasableRangesNeverTouchAnotherSegment) {
  // libtorch_python's writable segment starts in the same file page as its .rodata ends:
  // that page must stay when the shared .rodata is released.
  const std::string bytes = readTestFile(kLibtorchPython);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, kLibtorchPython);
  ASSERT_TRUE(elf.ok()) << elf.status();
  const std::vector<SharedSegment> segments = findShareableSegments(*elf, bytes, {}, 0);
  ASSERT_FALSE(segments.empty());
  uint64_t releasable = 0;
  for (const SharedSegment& s : segments) {
    if (s.release.length == 0) continue;
    EXPECT_GE(s.release.offset, s.offset);
    EXPECT_LE(s.release.offset + s.release.length, s.offset + s.length);
    for (const SharedSegment& other : segments) {
      if (&other == &s) continue;
      EXPECT_FALSE(s.release.offset < other.offset + other.length && s.release.offset + s.release.length > other.offset);
    }
    const uint64_t page = ::sysconf(_SC_PAGESIZE);
    for (const Elf64_Phdr& ph : elf->programHeaders()) {
      if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_W)) continue;
      const uint64_t begin = ph.p_offset - ph.p_offset % page;
      EXPECT_FALSE(s.release.offset + s.release.length > begin && s.release.offset < begin + page)
          << "would release the first page of the writable segment";
    }
    releasable += s.release.length;
  }
  EXPECT_GT(releasable, uint64_t{8} << 20);  // most of ~11 MB of code and read-only data

  // Stripped, it has no whole page outside its segments.
  EXPECT_TRUE(unmappedRanges(*elf).empty());
}

TEST(SegmentSharingTest, NoPageOfAnotherSegmentIsEverReleased) {
  // An unusual layout: another PT_LOAD whose file range lies in the middle of the code
  // segment's. Releasing the code segment's pages must leave that range alone.
  std::string bytes = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, kLibz);
  ASSERT_TRUE(elf.ok()) << elf.status();
  const uint64_t page = ::sysconf(_SC_PAGESIZE);
  int code = -1, other = -1;
  for (size_t i = 0; i < elf->programHeaders().size(); ++i) {
    const Elf64_Phdr& ph = elf->programHeaders()[i];
    if (ph.p_type != PT_LOAD) continue;
    if (ph.p_flags & PF_X) code = static_cast<int>(i);
    else if (!(ph.p_flags & PF_W) && ph.p_offset > 0) other = static_cast<int>(i);
  }
  ASSERT_GE(code, 0);
  ASSERT_GE(other, 0);
  Elf64_Phdr moved = elf->programHeaders()[other];
  const Elf64_Phdr& text = elf->programHeaders()[code];
  ASSERT_GT(text.p_filesz, 4 * page);
  moved.p_offset = text.p_offset - text.p_offset % page + 2 * page;  // inside the code pages
  moved.p_filesz = moved.p_memsz = page / 2;
  std::memcpy(bytes.data() + elf->header().e_phoff + other * sizeof(Elf64_Phdr), &moved, sizeof(moved));
  absl::StatusOr<ElfFile> odd = ElfFile::parse(bytes, "odd layout");
  ASSERT_TRUE(odd.ok()) << odd.status();
  for (const SharedSegment& s : findShareableSegments(*odd, bytes, {}, 0)) {
    if (s.release.length == 0) continue;
    EXPECT_FALSE(s.release.offset < moved.p_offset + page && s.release.offset + s.release.length > moved.p_offset)
        << "would release a page the other segment maps";
  }
}

TEST(SegmentSharingTest, UnmappedRangesCoverSymbolTablesOnly) {
  // Our interpreter library keeps .symtab/.strtab (~0.9 MB): pages no segment maps.
  const std::string bytes = readTestFile(PYFLEET_TEST_INTERPRETER_LIBRARY);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, "libpyfleet_interpreter.so");
  ASSERT_TRUE(elf.ok()) << elf.status();
  uint64_t symtab_offset = 0;
  for (const Elf64_Shdr& sh : elf->sectionHeaders()) {
    if (sh.sh_type == SHT_SYMTAB) symtab_offset = sh.sh_offset;
  }
  ASSERT_NE(symtab_offset, 0u);
  const std::vector<FileRange> unmapped = unmappedRanges(*elf);
  const uint64_t page = ::sysconf(_SC_PAGESIZE);
  uint64_t total = 0;
  for (const FileRange& r : unmapped) {
    EXPECT_EQ(r.offset % page, 0u);
    EXPECT_EQ(r.length % page, 0u);
    EXPECT_FALSE(touchesLoadSegment(*elf, r.offset, r.length));
    EXPECT_LE(r.offset + r.length, bytes.size());
    total += r.length;
  }
  // Whatever whole pages lie between the last segment and the end of the file.
  uint64_t mapped_end = 0;
  for (const Elf64_Phdr& ph : elf->programHeaders()) {
    if (ph.p_type == PT_LOAD) mapped_end = std::max<uint64_t>(mapped_end, (ph.p_offset + ph.p_filesz + page - 1) / page * page);
  }
  const uint64_t whole_tail = bytes.size() / page * page > mapped_end ? bytes.size() / page * page - mapped_end : 0;
  EXPECT_GE(total, whole_tail);
  EXPECT_GT(total, uint64_t{512} << 10);
}

TEST(SegmentSharingTest, ReleasedPagesLeaveTheCopyFileAndTheCopyRuns) {
  // A copy in the in-memory workspace: once its segments are shared, releasing them
  // frees the file's pages (st_blocks), and the code still runs from the original.
  std::unique_ptr<LibraryWorkspace> ws = *LibraryWorkspace::create();
  const std::string bytes = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, kLibz);
  ASSERT_TRUE(elf.ok());
  blkcnt_t before = 0, after = 0;
  absl::StatusOr<void*> handle = ws->loadWith(
      "libz-released-copy.so",
      [&](int fd, const std::string& path) { return writeFileAt(fd, bytes, 0, path); },
      [&](void* loaded, int fd) {
        struct stat st {};
        ::fstat(fd, &st);
        before = st.st_blocks;
        std::vector<SharedSegment> moved;
        ASSERT_TRUE(shareSegments(loaded, kLibz, findShareableSegments(*elf, bytes, {}, 0), &moved).ok());
        std::vector<FileRange> ranges = unmappedRanges(*elf);
        for (const SharedSegment& s : moved) ranges.push_back(s.release);
        EXPECT_GT(releaseFileRanges(fd, ranges), 0u);
        ::fstat(fd, &st);
        after = st.st_blocks;
      });
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_LT(after, before);
  auto zlib_version = reinterpret_cast<const char* (*)()>(symbolOrFail(*handle, "zlibVersion"));
  EXPECT_EQ(std::string(zlib_version()).rfind("1.", 0), 0u);
  // Compression touches code, read-only tables and the copy's own data.
  auto compress_bound = reinterpret_cast<unsigned long (*)(unsigned long)>(symbolOrFail(*handle, "compressBound"));
  EXPECT_GT(compress_bound(1000), 1000u);
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
