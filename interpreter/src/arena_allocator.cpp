#include "interpreter/src/arena_allocator.h"

#include <Python.h>
#include <sys/mman.h>

#include <cstdint>
#include <vector>

namespace pyfleet::internal {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
// Address space only (MAP_NORESERVE, untouched pages cost nothing): room for 1 GiB of
// small Python objects per interpreter before arenas fall back to plain mmap.
constexpr size_t kRange = size_t{1} << 30;
constexpr size_t kOpenStep = 4 * kHugePage;

struct ArenaRange {
  char* base = nullptr;  // kHugePage-aligned, kRange bytes
  size_t used = 0;    // bytes handed out as arenas
  size_t opened = 0;  // bytes made readable and writable (a multiple of kOpenStep)
  std::vector<void*> freed;  // arenas handed back, reused first
};
ArenaRange g_range;  // per library copy, i.e. per interpreter

bool InRange(void* p) {
  return g_range.base != nullptr && static_cast<char*>(p) >= g_range.base &&
         static_cast<char*>(p) < g_range.base + kRange;
}

void* AllocArena(void*, size_t size) {
  if (g_range.base != nullptr && size == (size_t{1} << 20)) {
    if (!g_range.freed.empty()) {
      void* p = g_range.freed.back();
      g_range.freed.pop_back();
      return p;
    }
    // The range is reserved PROT_NONE (no commit charge) and opened a few huge pages at a
    // time: whole, aligned huge pages must be writable before their first touch, or the
    // kernel falls back to 4 KiB pages.
    if (g_range.used + size > g_range.opened && g_range.opened + kOpenStep <= kRange &&
        ::mprotect(g_range.base + g_range.opened, kOpenStep, PROT_READ | PROT_WRITE) == 0) {
      g_range.opened += kOpenStep;
    }
    if (g_range.used + size <= g_range.opened) {
      void* p = g_range.base + g_range.used;
      g_range.used += size;
      return p;
    }
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void FreeArena(void*, void* p, size_t size) {
  if (InRange(p)) {
    ::madvise(p, size, MADV_DONTNEED);  // its memory goes back; the address is reused
    g_range.freed.push_back(p);
    return;
  }
  ::munmap(p, size);
}

}  // namespace

void InstallHugePageArenas() {
  // Address space only: PROT_NONE is not charged against overcommit limits or
  // RLIMIT_DATA; AllocArena makes each arena readable and writable as it hands it out.
  void* reserved = g_range.base != nullptr
                       ? MAP_FAILED  // already installed (a retried start): keep that range
                       : ::mmap(nullptr, kRange + kHugePage, PROT_NONE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved != MAP_FAILED) {
    const uintptr_t start = reinterpret_cast<uintptr_t>(reserved);
    const uintptr_t aligned = (start + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
    // Trim the unaligned head and tail so the range is exactly kRange bytes.
    if (aligned > start) ::munmap(reserved, aligned - start);
    const uintptr_t end = start + kRange + kHugePage;
    if (end > aligned + kRange) ::munmap(reinterpret_cast<void*>(aligned + kRange), end - (aligned + kRange));
    g_range.base = reinterpret_cast<char*>(aligned);
    // Without transparent huge pages this fails harmlessly: 4 KiB pages, as before.
    ::madvise(g_range.base, kRange, MADV_HUGEPAGE);
  }
  PyObjectArenaAllocator allocator = {nullptr, AllocArena, FreeArena};
  PyObject_SetArenaAllocator(&allocator);
}

}  // namespace pyfleet::internal
