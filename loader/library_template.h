// File: library_template.h
//
// A LibraryTemplate is a native library patched ONCE (see elf_edit.h) into an image whose
// per-interpreter names hold a fixed-width placeholder where the interpreter id goes.
// Each interpreter's copy is then made by overwriting those bytes, without re-patching.
//
//   ElfEdits edits;
//   edits.add_needed = {absl::StrCat(workspace, "/i", LibraryTemplate::kIdPlaceholder,
//                                    "-interpreter.so")};
//   PYFLEET_ASSIGN_OR_RETURN(LibraryTemplate t,
//                            LibraryTemplate::create(std::move(bytes), "_json.so", edits));
//   PYFLEET_ASSIGN_OR_RETURN(std::string copy_for_3, t.instantiate(3));
//   // copy_for_3 needs ".../i00000003-interpreter.so"
//
// Note [Template placeholders]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Per-interpreter copies of a library differ only in names that embed the interpreter id:
// the DT_NEEDED on that interpreter's library copy, the DT_NEEDED on its private copies of
// Python-dependent libraries, and the DT_SONAME of such a private copy. Callers build those
// names with kIdPlaceholder (exactly kIdWidth bytes) where the id goes, and LibraryTemplate
// applies the edits once and records the file offset of every placeholder in the strings
// the edit appended (only there: the library's own strings are never touched). An instance
// is the template with formatId(id) written over each placeholder: same length, so no
// relayout and no re-parse. Invariant, tested: instantiate(id) is byte-identical to
// editElf() run with the names spelled with formatId(id). ARCHITECTURE.md point 7.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "loader/elf_edit.h"

namespace pyfleet::internal {

class LibraryTemplate {
 public:
  // Width of an interpreter id in names, and the placeholder that stands for it.
  static constexpr int kIdWidth = 8;
  static constexpr absl::string_view kIdPlaceholder = "{ID####}";
  static constexpr int kMaxId = 99999999;

  // LibraryTemplate::formatId()
  //
  // The kIdWidth-digit, zero-padded spelling of `id` ("00000007"). InvalidArgument unless
  // 0 <= id <= kMaxId.
  static absl::StatusOr<std::string> formatId(int id);

  // LibraryTemplate::withId()
  //
  // `templated` with every kIdPlaceholder replaced by formatId(id): the concrete name a
  // placeholder name stands for. Same errors as formatId().
  static absl::StatusOr<std::string> withId(absl::string_view templated, int id);

  // LibraryTemplate::create()
  //
  // Applies `edits` (whose strings may contain kIdPlaceholder) to `image`, the bytes of
  // the library `file_name`, and records the placeholder offsets. Errors are editElf()'s.
  static absl::StatusOr<LibraryTemplate> create(std::string image, std::string file_name,
                                                const ElfEdits& edits);

  // LibraryTemplate::instantiate()
  //
  // A copy of the template for interpreter `id`. Same errors as formatId().
  absl::StatusOr<std::string> instantiate(int id) const;

  // LibraryTemplate::writeInstance()
  //
  // Produces the same bytes as instantiate(id) without copying the image: calls
  // `write(bytes, offset)` once with the whole template at offset 0, then once per
  // placeholder with the id's digits. For writing straight into a file (pwrite), which
  // spares a large copy per interpreter. Same errors as formatId(), plus `write`'s.
  // After keepOnlyChanges(), calls `copy_original()` first (it must put the original
  // file's bytes at offset 0), then `write` for each changed range and placeholder.
  using ByteWriter = absl::FunctionRef<absl::Status(absl::string_view bytes, uint64_t offset)>;
  using OriginalCopier = absl::FunctionRef<absl::Status()>;
  absl::Status writeInstance(int id, ByteWriter write) const;
  absl::Status writeInstance(int id, ByteWriter write, OriginalCopier copy_original) const;

  // LibraryTemplate::keepOnlyChanges()
  //
  // Replaces the image by the byte ranges where it differs from `original` (the bytes of
  // the library it was made from: edits change bytes in place and append, never move
  // them), so a template costs its edits instead of the library's size: libtorch_python's
  // keeps ~1 MB of 14 MB, and the process no longer holds every copied library in
  // memory. Afterwards image() is empty, instantiate() is unavailable (FailedPrecondition)
  // and writeInstance() needs `copy_original`. FailedPrecondition if the image is shorter
  // than `original` (then nothing changes).
  absl::Status keepOnlyChanges(absl::string_view original);
  bool keepsOnlyChanges() const { return compact_; }
  // Bytes the template holds (image or changed ranges).
  uint64_t heldBytes() const;

  const std::string& fileName() const { return file_name_; }
  // The patched image with placeholders in place (not loadable as is if it has any).
  const std::string& image() const { return image_; }
  // File offsets of the placeholders, ascending.
  const std::vector<uint64_t>& placeholderOffsets() const { return placeholder_offsets_; }
  // STB_GNU_UNIQUE symbols demoted by the edit.
  int demoted() const { return demoted_; }

 private:
  LibraryTemplate() = default;

  // A range of the instance that differs from the original file.
  struct Change {
    uint64_t offset;
    std::string bytes;
  };

  std::string file_name_;
  std::string image_;
  bool compact_ = false;
  std::vector<Change> changes_;  // after keepOnlyChanges(), ascending
  std::vector<uint64_t> placeholder_offsets_;
  int demoted_ = 0;
};

}  // namespace pyfleet::internal
