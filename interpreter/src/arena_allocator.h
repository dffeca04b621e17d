// File: arena_allocator.h
//
// InstallHugePageArenas() gives this library copy's CPython (one interpreter, see Note
// [One interpreter per library copy] in state.h) a pymalloc arena allocator backed by
// transparent huge pages. Called once, before Py_InitializeFromConfig.
//
// Note [Huge-page arenas for pymalloc]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A later interpreter's `import torch` creates some 36 MB of Python objects (tracemalloc),
// nearly all in pymalloc's 1 MiB arenas, and every first touch of a fresh 4 KiB page is
// a page fault. On the 2-core VMs this project runs on a fault costs 12-16 us (touching
// 64 MB page by page takes 200-250 ms), so faults alone were ~0.1 s of a later
// interpreter's start-up (benchmarks/interpreter_scaling.cpp prints it).
// The arenas are therefore carved, 1 MiB at a time, from one 2 MiB-aligned range of
// address space marked MADV_HUGEPAGE: where the kernel allows transparent huge pages
// (the default "madvise" mode does), one fault maps 2 MiB. Memory use grows by at most
// one partly used huge page; a freed arena is returned with MADV_DONTNEED and reused.
// Arenas past the range, or every arena when the range cannot be reserved, come from
// plain mmap as in stock CPython. The range is reserved PROT_NONE and opened an arena at
// a time, so it costs no commit charge. khugepaged may still collapse a range around a
// freed arena back into a huge page. The allocator runs under this interpreter's GIL only.
#pragma once

namespace pyfleet::internal {

void InstallHugePageArenas();

}  // namespace pyfleet::internal
