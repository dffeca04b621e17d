// File: elf_edit_fuzzer.cpp
//
// libFuzzer target: editElf (loader/elf_edit.h) on whatever ElfFile::parse accepts, with
// the edit sets loader/ makes (demote UNIQUE in place; add DT_NEEDED + soname + runpath;
// replace and remove DT_NEEDED), then the result parsed back by ElfFile::parse and
// checked against the edits, and a template overwrite (overwriteBytes) of the new
// strings. Contract: a library that parses can be edited: the only accepted errors are
// the documented Unimplemented (no room for a program header), FailedPrecondition
// (demote without .dynsym) and InvalidArgument "cannot edit: ... overlaps" (a crafted
// file); never an image that does not parse back, nor Internal "does not check".
//
//   scripts/fuzz elf_edit_fuzzer 60
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "loader/elf_edit.h"
#include "loader/elf_file.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using absl::StatusCode;
using pyfleet::internal::EditedImage;
using pyfleet::internal::ElfEdits;
using pyfleet::internal::ElfFile;

void EditAndCheck(const std::string& image, const ElfFile& before, const ElfEdits& edits,
                  const char* what) {
  absl::StatusOr<EditedImage> out = pyfleet::internal::editElf(image, "fuzz.so", edits);
  if (!out.ok()) {
    // The one documented refusal of a parseable file (overlapping rewrites).
    if (out.status().code() == StatusCode::kInvalidArgument &&
        out.status().message().find(": cannot edit: ") != absl::string_view::npos) {
      return;
    }
    PYFLEET_FUZZ_EXPECT_CODE(out.status(), what, StatusCode::kUnimplemented,
                             StatusCode::kFailedPrecondition);
    return;
  }
  absl::StatusOr<ElfFile> after = ElfFile::parse(out->image, "fuzz.so");
  PYFLEET_FUZZ_CHECK(after.ok(), absl::StrCat(what, ": result does not parse: ",
                                             after.status().ToString()));
  PYFLEET_FUZZ_CHECK(out->new_strings_offset <= out->image.size() &&
                         out->new_strings_size <= out->image.size() - out->new_strings_offset,
                     "new strings outside the image");
  if (edits.soname) PYFLEET_FUZZ_CHECK(after->soname() == edits.soname, "soname");
  if (edits.demote_unique) PYFLEET_FUZZ_CHECK(after->uniqueSymbolCount() == 0, "unique left");
  PYFLEET_FUZZ_CHECK(out->demoted == (edits.demote_unique ? before.uniqueSymbolCount() : 0),
                     "demoted count");
  if (out->new_strings_size > 0) {
    // How a template becomes an instance: overwrite a placeholder in the new strings.
    std::string copy = out->image;
    absl::Status st = pyfleet::internal::overwriteBytes(
        copy, {out->new_strings_offset}, std::string(out->new_strings_size - 1, 'x'));
    PYFLEET_FUZZ_CHECK(st.ok(), "overwriteBytes inside the image");
    PYFLEET_FUZZ_CHECK(ElfFile::parse(copy, "fuzz.so").ok(), "overwritten image parses");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string image(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ElfFile> before = ElfFile::parse(image, "fuzz.so");
  if (!before.ok()) return 0;  // elf_file_fuzzer checks the parser's errors

  if (before->dynsymSectionIndex() >= 0) {
    ElfEdits demote;
    demote.demote_unique = true;
    EditAndCheck(image, *before, demote, "editElf(demote_unique)");
  }

  ElfEdits add;  // a per-interpreter copy of a Python-dependent library
  add.add_needed = {"/tmp/pyfleet-0123ab/i00000001-interpreter.so"};
  add.soname = "i00000001-d0001-fuzz.so";
  add.runpath = "$ORIGIN/fuzz";
  add.demote_unique = before->dynsymSectionIndex() >= 0;
  EditAndCheck(image, *before, add, "editElf(add_needed, soname, runpath)");

  if (!before->needed().empty()) {
    ElfEdits replace;  // re-point one dependency at a copy, drop another
    replace.replace_needed = {{before->needed().front(), "i00000001-d0002-dep.so"}};
    if (before->needed().size() > 1 && before->needed().back() != before->needed().front()) {
      replace.remove_needed = {before->needed().back()};
    }
    EditAndCheck(image, *before, replace, "editElf(replace_needed, remove_needed)");
  }
  return 0;
}
