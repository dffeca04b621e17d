// File: segment_sharing.h
//
// Makes the read-only segments of a loaded library copy share memory with the original
// library file, so N interpreters' copies of libtorch_python (or of the interpreter
// library) keep one copy of their code in memory instead of N.
//
//   std::vector<SharedSegment> segments =
//       findShareableSegments(original_elf, template_image, placeholder_offsets, width);
//   ...dlopen the copy...
//   PYFLEET_ASSIGN_OR_RETURN(uint64_t bytes, shareSegments(handle, original_path, segments));
//
// Note [Sharing read-only segments with the original file]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A per-interpreter copy is a distinct file (glibc dedups by inode), so the page cache
// holds its code once per interpreter: ~9 MB of text and ~3 MB of read-only data for
// libtorch_python, ~5 MB for the interpreter library, per interpreter. But our edits
// (elf_edit.h) only append a segment and touch the first one (headers, .dynsym): the
// code and .rodata segments of a copy are byte-identical to the original file at the
// same offsets. After dlopen has mapped and relocated the copy, each such segment is
// replaced, in place (mmap MAP_FIXED, same protection), by a private mapping of the
// ORIGINAL file's pages. The bytes seen at every address are the same before and
// after; only which page-cache pages back them changes, and those are now shared by all
// copies. Writable segments (relocated data, RELRO) stay the copy's own. A segment is
// only shared when its whole page-rounded file range is identical in the copy and in the
// original and holds no per-interpreter placeholder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "loader/elf_file.h"

namespace pyfleet::internal {

// A page-aligned range of a file.
struct FileRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// A page-rounded read-only PT_LOAD range, identical in a copy and its original.
struct SharedSegment {
  uint64_t vaddr = 0;   // page-aligned, relative to the load base
  uint64_t offset = 0;  // page-aligned file offset (the same in copy and original)
  uint64_t length = 0;  // multiple of the page size
  int prot = 0;         // PROT_READ [| PROT_EXEC]
  // The whole pages of [offset, offset + length) that no other PT_LOAD segment maps
  // (a page at either end may also hold the start or end of a neighbouring segment):
  // once shared, the copy's file no longer backs them anywhere, so they can be released
  // (releaseSharedPages).
  FileRange release;
};

// The read-only segments of `original` (parsed from its bytes) that `copy` holds byte
// for byte over their page-rounded file range, with no byte of
// [p, p + patch_width) for p in `patched_offsets` inside it. `copy` is the copy's image
// (placeholders in place: they are excluded by `patched_offsets`).
std::vector<SharedSegment> findShareableSegments(const ElfFile& original, absl::string_view copy,
                                                 absl::Span<const uint64_t> patched_offsets,
                                                 uint64_t patch_width);

// Maps `segments` of the file `original_path` over the copy loaded as `handle` (see the
// Note). Returns the number of bytes now shared. On error (the original cannot be
// opened, mmap fails) nothing is left half-done for that segment and the copy stays
// usable with its own pages; the caller may ignore the error.
// `moved`, if given, receives each segment that was mapped over. The first form maps
// from `original_fd` (the very file the template was made from, kept open: a package
// upgrade that replaces the file on disk cannot slip other bytes under a copy), the
// second opens `original_path`.
absl::StatusOr<uint64_t> shareSegments(void* handle, int original_fd, const std::string& original_path,
                                       absl::Span<const SharedSegment> segments,
                                       std::vector<SharedSegment>* moved = nullptr);
absl::StatusOr<uint64_t> shareSegments(void* handle, const std::string& original_path,
                                       absl::Span<const SharedSegment> segments,
                                       std::vector<SharedSegment>* moved = nullptr);

// unmappedRanges()
//
// The whole pages of the file `elf` (a copy's image) that no PT_LOAD segment maps:
// section headers, .symtab, .strtab and the like, never needed once it is loaded.
std::vector<FileRange> unmappedRanges(const ElfFile& elf);

// releaseFileRanges()
//
// Frees `ranges` of the copy's file open as `fd` (fallocate FALLOC_FL_PUNCH_HOLE), which
// nothing may map from it any more: the `release` ranges of segments shareSegments moved,
// and unmappedRanges(). On tmpfs that returns their memory (a copy's file otherwise pins
// ~20 MB for libtorch_python until exit); on a disk file system it drops dirty pages that
// would be written back. Best effort: a file system without hole punching keeps them.
// Returns the bytes released.
uint64_t releaseFileRanges(int fd, absl::Span<const FileRange> ranges);

}  // namespace pyfleet::internal
