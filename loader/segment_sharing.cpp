#include "loader/segment_sharing.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>  // mremap (_GNU_SOURCE, which g++ defines)
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "loader/base/owned_fd.h"
#include "loader/base/posix_error.h"

namespace pyfleet::internal {
namespace {

uint64_t PageSize() { return static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)); }

// The whole pages [begin, end) of the file that segment `ph` maps.
struct PageSpan {
  uint64_t begin;
  uint64_t end;
};
PageSpan filePages(const Elf64_Phdr& ph, uint64_t page) {
  return PageSpan{ph.p_offset - ph.p_offset % page, (ph.p_offset + ph.p_filesz + page - 1) / page * page};
}

}  // namespace

std::vector<SharedSegment> findShareableSegments(const ElfFile& original, absl::string_view copy,
                                                 absl::Span<const uint64_t> patched_offsets,
                                                 uint64_t patch_width) {
  const uint64_t page = PageSize();
  const absl::string_view source = original.bytes();
  std::vector<SharedSegment> out;
  for (const Elf64_Phdr& ph : original.programHeaders()) {
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) != 0 || ph.p_filesz == 0) continue;
    if (ph.p_memsz != ph.p_filesz) continue;  // no zero-fill tail in a read-only segment
    if ((ph.p_offset % page) != (ph.p_vaddr % page)) continue;
    const auto [begin, end] = filePages(ph, page);
    if (end > source.size() || end > copy.size()) continue;
    bool patched = false;
    for (uint64_t p : patched_offsets) {
      if (p < end && p + patch_width > begin) patched = true;
    }
    if (patched || std::memcmp(source.data() + begin, copy.data() + begin, end - begin) != 0) continue;
    SharedSegment s;
    s.vaddr = ph.p_vaddr - ph.p_vaddr % page;
    s.offset = begin;
    s.length = end - begin;
    s.prot = PROT_READ | ((ph.p_flags & PF_X) ? PROT_EXEC : 0);
    uint64_t release_begin = begin, release_end = end;
    for (const Elf64_Phdr& other : original.programHeaders()) {
      if (other.p_type != PT_LOAD || &other == &ph || other.p_filesz == 0) continue;
      const auto [other_begin, other_end] = filePages(other, page);
      if (other_end <= begin || other_begin >= end) continue;
      if (other_begin >= begin + page && other_end <= end - page) {
        release_end = release_begin;  // another segment inside this one: release nothing
        continue;
      }
      if (other_begin < begin + page) release_begin = std::max(release_begin, std::min(other_end, end));
      if (other_end > end - page) release_end = std::min(release_end, std::max(other_begin, begin));
    }
    if (release_end > release_begin) s.release = FileRange{release_begin, release_end - release_begin};
    out.push_back(s);
  }
  return out;
}

absl::StatusOr<uint64_t> shareSegments(void* handle, const std::string& original_path,
                                       absl::Span<const SharedSegment> segments,
                                       std::vector<SharedSegment>* moved) {
  if (segments.empty()) return 0;
  OwnedFd fd(::open(original_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return PosixError(errno, absl::StrCat("opening ", original_path));
  return shareSegments(handle, fd.get(), original_path, segments, moved);
}

absl::StatusOr<uint64_t> shareSegments(void* handle, int fd, const std::string& original_path,
                                       absl::Span<const SharedSegment> segments,
                                       std::vector<SharedSegment>* moved) {
  if (segments.empty()) return 0;
  struct link_map* map = nullptr;
  if (::dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) {
    const char* error = ::dlerror();
    return absl::InternalError(absl::StrCat("dlinfo of ", original_path, " copy: ", error ? error : "?"));
  }
  uint64_t shared = 0;
  for (const SharedSegment& s : segments) {
    void* where = reinterpret_cast<void*>(map->l_addr + s.vaddr);
    // See Note [Sharing read-only segments with the original file]: same bytes, same
    // protection, other (shared) pages. Map first where the kernel likes, then move the
    // mapping over the copy's in one step (mremap replaces the destination atomically),
    // so a failure leaves the copy's own pages in place.
    void* fresh = ::mmap(nullptr, s.length, s.prot, MAP_PRIVATE, fd, static_cast<off_t>(s.offset));
    if (fresh == MAP_FAILED) {
      return PosixError(errno, absl::StrCat("mapping ", original_path));
    }
    if (::mremap(fresh, s.length, s.length, MREMAP_MAYMOVE | MREMAP_FIXED, where) == MAP_FAILED) {
      const int error = errno;
      ::munmap(fresh, s.length);
      return PosixError(error, absl::StrCat("moving ", original_path, " over its copy"));
    }
    shared += s.length;
    if (moved != nullptr) moved->push_back(s);
  }
  return shared;
}

std::vector<FileRange> unmappedRanges(const ElfFile& elf) {
  const uint64_t page = PageSize();
  std::vector<PageSpan> mapped;
  for (const Elf64_Phdr& ph : elf.programHeaders()) {
    if (ph.p_type != PT_LOAD || ph.p_filesz == 0) continue;
    mapped.push_back(filePages(ph, page));
  }
  std::sort(mapped.begin(), mapped.end(), [](const PageSpan& a, const PageSpan& b) { return a.begin < b.begin; });
  std::vector<FileRange> out;
  uint64_t at = 0;
  const uint64_t file_end = elf.bytes().size() / page * page;  // a partial last page stays
  for (const PageSpan& m : mapped) {
    if (m.begin > at && at < file_end) out.push_back(FileRange{at, std::min(m.begin, file_end) - at});
    at = std::max(at, m.end);
  }
  if (file_end > at) out.push_back(FileRange{at, file_end - at});
  return out;
}

uint64_t releaseFileRanges(int fd, absl::Span<const FileRange> ranges) {
  uint64_t released = 0;
  for (const FileRange& r : ranges) {
    if (r.length == 0) continue;
    if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(r.offset),
                    static_cast<off_t>(r.length)) == 0) {
      released += r.length;
    }
  }
  return released;
}

}  // namespace pyfleet::internal
