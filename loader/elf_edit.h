// File: elf_edit.h
//
// editElf() applies a set of dynamic-section edits to an in-memory image of an ELF64
// x86-64 shared object in ONE relayout, and checks the result by parsing it back with
// ElfFile. This is how loader/ makes per-interpreter copies of native libraries without
// any external tool (see ARCHITECTURE.md "How isolation works").
//
//   ElfEdits edits;
//   edits.add_needed = {"/tmp/pyfleet-ab12cd/i00000001-interpreter.so"};
//   edits.soname = "i00000001-d0001-libtorch_python.so.1.13";
//   edits.demote_unique = true;
//   PYFLEET_ASSIGN_OR_RETURN(EditedImage out,
//                            editElf(std::move(bytes), "libtorch_python.so.1.13", edits));
//   writeFile(out.image);
//
// Note [ELF relayout for new dynamic strings]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A linked library has no room to grow .dynstr or .dynamic in place. Like patchelf, we
// append, at the end of the file, one new page-aligned PT_LOAD segment (flags R|W, p_vaddr
// above every existing segment including .bss, p_offset == p_vaddr mod page) holding:
//   [the program header table, one entry longer][the new .dynamic][the new .dynstr]
// The new .dynstr starts with a byte copy of the old one, so every existing string offset
// (.dynsym st_name, .gnu.version_r, the untouched dynamic entries) stays valid; new
// strings follow it. Then e_phoff/e_phnum, PT_DYNAMIC, PT_PHDR (if present),
// DT_STRTAB/DT_STRSZ and the .dynamic/.dynstr section headers are re-pointed at the copies.
// The old .dynamic/.dynstr bytes stay where they were, unused. The new segment is writable
// because glibc relocates d_ptr entries of .dynamic in place while loading.
//
// Note [STB_GNU_UNIQUE demotion]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// glibc makes every STB_GNU_UNIQUE symbol process-wide: the first definition loaded wins
// for every later object that defines or references the same name, even across
// RTLD_LOCAL copies. g++ emits UNIQUE for static locals of inline functions and static
// data members of templates (libtorch_python.so.1.13 has 58), so two private copies of such a
// library would share that state; for torch the second interpreter aborts with
// "pytorch: _C shared library re-initialized". Each private copy therefore gets every
// UNIQUE symbol in .dynsym rewritten to STB_GLOBAL (one st_info byte each, in place). As
// GLOBAL, a copy binds to its own definition unless an object in the global scope defines
// the same name first. Libraries that stay process-global keep their UNIQUE symbols.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "loader/elf_file.h"

namespace pyfleet::internal {

// What to change. Strings must not contain NUL.
struct ElfEdits {
  // New DT_NEEDED entries, inserted in this order before the existing ones (so that the
  // loader searches them first).
  std::vector<std::string> add_needed;
  // {old value, new value}: every DT_NEEDED equal to `old value` gets `new value`, and so
  // does every DT_VERNEED vn_file equal to it (glibc finds the library a version is
  // required from by that name among the loaded dependencies, and asserts it is there).
  // Each old value must be a DT_NEEDED (NotFound otherwise).
  std::vector<std::pair<std::string, std::string>> replace_needed;
  // DT_NEEDED entries to drop (see Note [Dependencies already in the global scope] in
  // global_scope.h). Each must be a DT_NEEDED (NotFound otherwise). Their DT_VERNEED
  // entries stay: glibc finds those libraries among the loaded objects by name.
  std::vector<std::string> remove_needed;
  // New DT_SONAME value; the entry is added if the library has none.
  std::optional<std::string> soname;
  // New search path: replaces the value of DT_RUNPATH and of DT_RPATH where present;
  // adds a DT_RUNPATH if the library has neither.
  std::optional<std::string> runpath;
  // Rewrite every STB_GNU_UNIQUE symbol of .dynsym to STB_GLOBAL. See Note
  // [STB_GNU_UNIQUE demotion]. FailedPrecondition if the library has no .dynsym section.
  bool demote_unique = false;
  // {old name, new name}: every undefined .dynsym symbol named `old name` is renamed
  // `new name` (a new string; its st_name re-pointed), so the copy binds that reference to
  // whatever defines the new name in its scope. See Note [Redirected references] in
  // library_loader.h. Each old name must be an undefined symbol (NotFound otherwise).
  std::vector<std::pair<std::string, std::string>> rename_undefined;
};

// The result of editElf().
struct EditedImage {
  std::string image;
  // File range holding every string the edit added, each NUL-terminated (empty when
  // nothing was added). Template placeholders are looked for only here.
  uint64_t new_strings_offset = 0;
  uint64_t new_strings_size = 0;
  // Number of symbols demoted from STB_GNU_UNIQUE.
  int demoted = 0;
};

// editElf()
//
// Applies `edits` to `image` (the bytes of the library named `file_name`, used in
// messages). Edits that add no string (only `demote_unique`) are done in place without
// relayout; otherwise see Note [ELF relayout for new dynamic strings]. The result is
// parsed back and checked (needed list, soname, search path, unique count); any
// mismatch is an Internal error. Parse errors of the input are returned as ElfFile::parse
// gives them. InvalidArgument "<file>: cannot edit: ..." for a file whose parts that the
// edit rewrites in place (ELF header, section headers, version needs, .dynsym) overlap,
// which only a crafted file does.
absl::StatusOr<EditedImage> editElf(std::string image, absl::string_view file_name,
                                    const ElfEdits& edits);

// dynamicWithoutSoname()
//
// The edit that removes DT_SONAME without a relayout: the bytes of `elf`'s dynamic
// entries with every DT_SONAME left out and the later entries moved up, padded with
// DT_NULL to the same length, to be written at elf.dynamicOffset(). Nothing else refers
// to an entry by its position. nullopt if `elf` has no DT_SONAME. See Note [A copy is
// known only by its own path] in library_copy.h.
std::optional<std::string> dynamicWithoutSoname(const ElfFile& elf);

// overwriteBytes()
//
// Writes `value` at each of `offsets` in `image` (same length, no relayout): how a
// template becomes one instance. See Note [Template placeholders] in library_template.h.
// OutOfRange if a write would pass the end of `image`; nothing is written then.
absl::Status overwriteBytes(std::string& image, absl::Span<const uint64_t> offsets,
                            absl::string_view value);

}  // namespace pyfleet::internal
