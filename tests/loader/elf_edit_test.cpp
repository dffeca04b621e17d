// Tests for loader/elf_edit.h: edits parse back as asked, keep every old string in place,
// look consistent to readelf, and the edited libraries really load and run.
#include "loader/elf_edit.h"

#include <dlfcn.h>
#include <elf.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loader/elf_file.h"
#include "loader/library_copy.h"
#include "loader_test_util.h"
#include "pyfleet/platform.h"

extern char** environ;

namespace pyfleet::internal {
namespace {

using ::pyfleet::internal::testing::kLibtorchPython;
using ::pyfleet::internal::testing::kLibz;
using ::pyfleet::internal::testing::readTestFile;
using ::pyfleet::internal::testing::symbolOrFail;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ElfFile parseOrDie(const std::string& bytes, const std::string& name) {
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, name);
  EXPECT_TRUE(elf.ok()) << elf.status();
  return *std::move(elf);
}

// Runs a command and returns its stdout (popen; the commands are fixed strings here).
std::string runCommand(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return out;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0) out.append(buffer.data(), n);
  return out;
}

TEST(ElfEditTest, AddsNeededWithoutMovingExistingStrings) {
  const std::string original = readTestFile(kLibz);
  const ElfFile before = parseOrDie(original, "libz.so.1");
  ElfEdits edits;
  edits.add_needed = {"libm.so.6", "/tmp/some/where/libx.so"};
  edits.soname = "libz-copy.so";
  absl::StatusOr<EditedImage> out = editElf(original, "libz.so.1", edits);
  ASSERT_TRUE(out.ok()) << out.status();
  const ElfFile after = parseOrDie(out->image, "edited");

  std::vector<std::string> expected = edits.add_needed;
  expected.insert(expected.end(), before.needed().begin(), before.needed().end());
  EXPECT_EQ(after.needed(), expected);
  EXPECT_EQ(after.soname(), "libz-copy.so");
  // The new table starts with the old one; .dynsym is untouched, so every symbol name
  // resolves to the same string.
  ASSERT_GT(after.dynstr().size(), before.dynstr().size());
  EXPECT_EQ(after.dynstr().substr(0, before.dynstr().size()), before.dynstr());
  EXPECT_EQ(out->image.substr(0, original.size()).substr(before.dynsymOffset(),
                                                       before.dynsymCount() * sizeof(Elf64_Sym)),
            original.substr(before.dynsymOffset(), before.dynsymCount() * sizeof(Elf64_Sym)));
  EXPECT_EQ(out->new_strings_offset, after.dynstrOffset() + before.dynstr().size());
  EXPECT_EQ(out->image.substr(out->new_strings_offset, out->new_strings_size),
            std::string("libm.so.6\0/tmp/some/where/libx.so\0libz-copy.so\0", 47));
}

TEST(ElfEditTest, AppendsOneWritableLoadSegmentAboveEverything) {
  const std::string original = readTestFile(kLibz);
  const ElfFile before = parseOrDie(original, "libz.so.1");
  ElfEdits edits;
  edits.add_needed = {"libm.so.6"};
  absl::StatusOr<EditedImage> out = editElf(original, "libz.so.1", edits);
  ASSERT_TRUE(out.ok()) << out.status();
  const ElfFile after = parseOrDie(out->image, "edited");

  ASSERT_EQ(after.programHeaders().size(), before.programHeaders().size() + 1);
  std::vector<Elf64_Phdr> loads;
  for (const Elf64_Phdr& ph : after.programHeaders()) {
    if (ph.p_type == PT_LOAD) loads.push_back(ph);
  }
  for (size_t i = 1; i < loads.size(); ++i) EXPECT_LT(loads[i - 1].p_vaddr, loads[i].p_vaddr);
  const Elf64_Phdr& added = loads.back();
  EXPECT_EQ(added.p_flags, static_cast<Elf64_Word>(PF_R | PF_W));
  EXPECT_GE(added.p_vaddr, before.loadEnd());
  EXPECT_EQ(added.p_offset % 4096, 0u);
  EXPECT_EQ(added.p_vaddr % 4096, added.p_offset % 4096);
  EXPECT_GE(added.p_offset, original.size());
  EXPECT_EQ(added.p_offset + added.p_filesz, out->image.size());
  // Program headers, .dynamic and .dynstr all live in it.
  EXPECT_EQ(after.header().e_phoff, added.p_offset);
  const Elf64_Phdr& dyn = after.programHeaders()[after.dynamicPhdrIndex()];
  EXPECT_GE(dyn.p_offset, added.p_offset);
  EXPECT_GE(after.dynstrOffset(), dyn.p_offset + dyn.p_filesz);
  // Section headers follow.
  const Elf64_Shdr& dynamic_section = after.sectionHeaders()[after.dynamicSectionIndex()];
  EXPECT_EQ(dynamic_section.sh_offset, dyn.p_offset);
  EXPECT_EQ(dynamic_section.sh_addr, dyn.p_vaddr);
  const Elf64_Shdr& dynstr_section = after.sectionHeaders()[after.dynstrSectionIndex()];
  EXPECT_EQ(dynstr_section.sh_offset, after.dynstrOffset());
  EXPECT_EQ(dynstr_section.sh_size, after.dynstr().size());
}

TEST(ElfEditTest, ReplacesNeededAndRunpath) {
  const std::string original = readTestFile(PYFLEET_TEST_FAKE_EXTENSION);
  ElfEdits edits;
  edits.replace_needed = {{"libpyfleet_test_fake_python_dependency.so", "/x/private-dep.so"}};
  edits.runpath = "/opt/lib:/usr/local/lib";
  absl::StatusOr<EditedImage> out = editElf(original, "fake_extension.so", edits);
  ASSERT_TRUE(out.ok()) << out.status();
  const ElfFile after = parseOrDie(out->image, "edited");
  EXPECT_THAT(after.needed(), ::testing::Contains("/x/private-dep.so"));
  EXPECT_THAT(after.needed(),
              ::testing::Not(::testing::Contains("libpyfleet_test_fake_python_dependency.so")));
  EXPECT_EQ(after.runpath(), "/opt/lib:/usr/local/lib");
  // The version requirement on the replaced library follows it (else ld.so asserts).
  std::vector<std::string> verneed_files;
  for (const ElfFile::Verneed& v : after.verneeds()) verneed_files.push_back(v.file);
  EXPECT_THAT(verneed_files, ::testing::Contains("/x/private-dep.so"));
  EXPECT_THAT(verneed_files,
              ::testing::Not(::testing::Contains("libpyfleet_test_fake_python_dependency.so")));
}

TEST(ElfEditTest, RemovesNeededKeepingTheRestInOrder) {
  const std::string original = readTestFile(kLibtorchPython);
  const ElfFile before = parseOrDie(original, "libtorch_python");
  ASSERT_THAT(before.needed(), ::testing::Contains("libtorch_cpu.so." PYFLEET_TORCH_SOVERSION));
  ElfEdits edits;
  edits.remove_needed = {"libtorch_cpu.so." PYFLEET_TORCH_SOVERSION, "libc10.so." PYFLEET_TORCH_SOVERSION};
  absl::StatusOr<EditedImage> out = editElf(original, "libtorch_python", edits);
  ASSERT_TRUE(out.ok()) << out.status();
  std::vector<std::string> expected;
  for (const std::string& name : before.needed()) {
    if (name != "libtorch_cpu.so." PYFLEET_TORCH_SOVERSION && name != "libc10.so." PYFLEET_TORCH_SOVERSION) expected.push_back(name);
  }
  EXPECT_EQ(parseOrDie(out->image, "edited").needed(), expected);

  edits.remove_needed = {"libnot-there.so"};
  absl::StatusOr<EditedImage> missing = editElf(original, "libtorch_python", edits);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("libnot-there.so"));
}

TEST(ElfEditTest, AddsRunpathAndSonameWhenAbsent) {
  const std::string original = readTestFile(PYFLEET_TEST_STDLIB_EXTENSION);
  ElfEdits edits;
  edits.runpath = "/opt/lib";
  edits.soname = "json-copy.so";
  edits.add_needed = {"libm.so.6"};
  absl::StatusOr<EditedImage> out = editElf(original, "_queue.so", edits);
  ASSERT_TRUE(out.ok()) << out.status();
  const ElfFile after = parseOrDie(out->image, "edited");
  EXPECT_EQ(after.runpath(), "/opt/lib");
  EXPECT_EQ(after.soname(), "json-copy.so");
  const ElfFile before = parseOrDie(original, "original");
  std::vector<std::string> needed = {"libm.so.6"};  // first, then what it had
  for (const std::string& n : before.needed()) needed.push_back(n);
  EXPECT_EQ(after.needed(), needed);
}

TEST(ElfEditTest, ReplacingAbsentNeededIsNotFound) {
  ElfEdits edits;
  edits.replace_needed = {{"libnothere.so", "x"}};
  absl::StatusOr<EditedImage> out = editElf(readTestFile(kLibz), "libz.so.1", edits);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(out.status().message()),
              HasSubstr("libz.so.1: has no DT_NEEDED \"libnothere.so\" to replace (has: libc.so.6)"));
}

TEST(ElfEditTest, RejectsBadEdits) {
  const std::string libz = readTestFile(kLibz);
  ElfEdits nul;
  nul.add_needed = {std::string("a\0b", 3)};
  EXPECT_EQ(editElf(libz, "libz.so.1", nul).status().code(), absl::StatusCode::kInvalidArgument);

  std::string no_sections = libz;  // e_shnum = 0: no .dynsym to demote in
  ::pyfleet::internal::testing::putAt<Elf64_Half>(no_sections, offsetof(Elf64_Ehdr, e_shnum), 0);
  ElfEdits demote;
  demote.demote_unique = true;
  absl::StatusOr<EditedImage> out = editElf(no_sections, "libz.so.1", demote);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("libz.so.1: cannot demote"));

  absl::StatusOr<EditedImage> garbage = editElf("not elf", "g.so", ElfEdits{});
  EXPECT_EQ(garbage.status().message(), "g.so: not an ELF file");
}

// Found with tests/fuzz/elf_edit_fuzzer's oracle: with the last PT_LOAD of a library
// ending at 2^64 - 1, the appended segment's address (loadEnd() page-aligned up) wrapped
// to 0 and the edit came back as an image that does not parse ("PT_DYNAMIC ... does not
// match the PT_LOAD mapping"). Such a library is now rejected as the input it is.
TEST(ElfEditTest, RejectsSegmentsAtTheTopOfTheAddressSpace) {
  std::string libz = readTestFile(kLibz);
  const ElfFile elf = parseOrDie(libz, "libz.so.1");
  size_t last = 0;
  for (size_t i = 0; i < elf.programHeaders().size(); ++i) {
    if (elf.programHeaders()[i].p_type == PT_LOAD) last = i;
  }
  ::pyfleet::internal::testing::putAt<Elf64_Xword>(
      libz, elf.header().e_phoff + last * sizeof(Elf64_Phdr) + offsetof(Elf64_Phdr, p_memsz),
      ~uint64_t{0} - elf.programHeaders()[last].p_vaddr);
  ElfEdits edits;
  edits.add_needed = {"libextra.so"};
  absl::StatusOr<EditedImage> out = editElf(libz, "libz.so.1", edits);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("beyond the x86-64 address space"));
}

// Found with tests/fuzz/elf_edit_fuzzer's oracle: a section header table at offset 8
// (e_ident's padding read as sh_type SHT_DYNAMIC) parses, and the relayout's rewrite of
// that ".dynamic" section header overwrote the new ELF header: the result did not parse.
TEST(ElfEditTest, RefusesFilesWhoseRewrittenPartsOverlap) {
  std::string libz = readTestFile(kLibz);
  ::pyfleet::internal::testing::putAt<Elf64_Off>(libz, offsetof(Elf64_Ehdr, e_shoff), 8);
  ::pyfleet::internal::testing::putAt<Elf64_Half>(libz, offsetof(Elf64_Ehdr, e_shnum), 1);
  ::pyfleet::internal::testing::putAt<Elf64_Word>(libz, 12, SHT_DYNAMIC);  // e_ident[12..15]
  ASSERT_EQ(parseOrDie(libz, "libz.so.1").dynamicSectionIndex(), 0);
  ElfEdits edits;
  edits.add_needed = {"libextra.so"};
  absl::StatusOr<EditedImage> out = editElf(libz, "libz.so.1", edits);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(),
            "libz.so.1: cannot edit: the ELF header at offset 0 overlaps a section header at "
            "offset 8");
}

// Found by tests/fuzz/elf_edit_fuzzer: two version needs that overlap, the second one's
// vn_file being the first one's vn_next. Replacing the library the second one names
// rewrote that vn_file, so the chain of the result led outside the file ("address ... is
// not in the file part of any PT_LOAD"). Such a file is now refused before any write.
TEST(ElfEditTest, RefusesAWriteIntoWhatTheParseReads) {
  std::string libz = readTestFile(kLibz);
  const ElfFile elf = parseOrDie(libz, "libz.so.1");
  ASSERT_EQ(elf.verneeds().size(), 1u);
  const uint64_t first = elf.verneeds()[0].offset;
  // The second need starts 8 bytes into the first: its vn_file is the first's vn_next, 8,
  // which names "start__" in .dynstr (the tail of "__gmon_start__" at 1).
  ::pyfleet::internal::testing::putAt<Elf64_Word>(libz, first + offsetof(Elf64_Verneed, vn_next), 8);
  ASSERT_EQ(offsetof(Elf64_Verneed, vn_file) + 8, offsetof(Elf64_Verneed, vn_next));
  for (size_t i = 0; i < elf.dynamicEntries().size(); ++i) {
    const Elf64_Sxword tag = elf.dynamicEntries()[i].d_tag;
    const uint64_t value_at = elf.dynamicOffset() + i * sizeof(Elf64_Dyn) + offsetof(Elf64_Dyn, d_un);
    if (tag == DT_VERNEEDNUM) ::pyfleet::internal::testing::putAt<Elf64_Xword>(libz, value_at, 2);
    if (tag == DT_NEEDED) ::pyfleet::internal::testing::putAt<Elf64_Xword>(libz, value_at, 8);
  }
  const ElfFile crafted = parseOrDie(libz, "libz.so.1");
  ASSERT_EQ(crafted.needed(), std::vector<std::string>{"start__"});
  ASSERT_EQ(crafted.verneeds().size(), 2u);
  ASSERT_EQ(crafted.verneeds()[1].offset, first + 8);
  ASSERT_EQ(crafted.verneeds()[1].file, "start__");

  ElfEdits edits;
  edits.replace_needed = {{"start__", "i00000001-d0002-dep.so"}};
  absl::StatusOr<EditedImage> out = editElf(libz, "libz.so.1", edits);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(),
            absl::StrCat("libz.so.1: cannot edit: a version need's vn_file at offset ", first + 12,
                         " overlaps a version need at offset ", first));
  // Without the overlap the same edit goes through.
  std::string plain = readTestFile(kLibz);
  ElfEdits libc;
  libc.replace_needed = {{"libc.so.6", "i00000001-d0002-dep.so"}};
  EXPECT_TRUE(editElf(plain, "libz.so.1", libc).ok());
}

// Found by tests/fuzz/elf_edit_fuzzer (a test library whose DT_STRSZ was cut below the
// .dynstr section's size): the new string table copied only DT_STRSZ bytes, and the
// .dynstr section header re-pointed at it then cut off .dynsym names (the result did not
// parse back) and version names (glibc then fails to load the copy). The new table now
// starts with the whole old section.
TEST(ElfEditTest, KeepsStringsPastStrsz) {
  std::string libz = readTestFile(kLibz);
  const ElfFile elf = parseOrDie(libz, "libz.so.1");
  ASSERT_GE(elf.dynstrSectionIndex(), 0);
  const Elf64_Shdr section = elf.sectionHeaders()[elf.dynstrSectionIndex()];
  const std::string old_section = libz.substr(section.sh_offset, section.sh_size);
  // DT_STRSZ just past the soname, the last string the dynamic section names; the version
  // names (GLIBC_2.x) lie beyond it.
  const uint64_t soname_end = *elf.dynamicValue(DT_SONAME) + std::string("libz.so.1").size() + 1;
  ASSERT_LT(soname_end, section.sh_size);
  for (size_t i = 0; i < elf.dynamicEntries().size(); ++i) {
    if (elf.dynamicEntries()[i].d_tag != DT_STRSZ) continue;
    ::pyfleet::internal::testing::putAt<Elf64_Xword>(
        libz, elf.dynamicOffset() + i * sizeof(Elf64_Dyn) + offsetof(Elf64_Dyn, d_un), soname_end);
  }
  ASSERT_EQ(parseOrDie(libz, "libz.so.1").dynstr().size(), soname_end);

  ElfEdits edits;
  edits.soname = "libz-short-strsz.so";
  absl::StatusOr<EditedImage> out = editElf(libz, "libz.so.1", edits);
  ASSERT_TRUE(out.ok()) << out.status();
  const ElfFile after = parseOrDie(out->image, "libz-short-strsz.so");
  EXPECT_EQ(after.dynstr().substr(0, old_section.size()), old_section);
  EXPECT_EQ(after.sectionHeaders()[after.dynstrSectionIndex()].sh_size, after.dynstr().size());

  absl::StatusOr<std::unique_ptr<LibraryWorkspace>> ws = LibraryWorkspace::create();
  ASSERT_TRUE(ws.ok()) << ws.status();
  absl::StatusOr<void*> handle = (*ws)->loadImage("libz-short-strsz.so", out->image);
  ASSERT_TRUE(handle.ok()) << handle.status();
  using VersionFn = const char* (*)();
  auto version = reinterpret_cast<VersionFn>(symbolOrFail(*handle, "zlibVersion"));
  ASSERT_NE(version, nullptr);
  EXPECT_THAT(std::string(version()), ::testing::StartsWith("1."));
}

TEST(ElfEditTest, DemotesUniqueSymbolsInPlace) {
  const std::string original = readTestFile(kLibtorchPython);
  ElfEdits edits;
  edits.demote_unique = true;
  absl::StatusOr<EditedImage> out = editElf(original, "libtorch_python.so." PYFLEET_TORCH_SOVERSION, edits);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->demoted, testing::kLibtorchPythonUniqueSymbols);
  ASSERT_EQ(out->image.size(), original.size());  // no relayout
  size_t changed = 0;
  for (size_t i = 0; i < original.size(); ++i) changed += original[i] != out->image[i];
  EXPECT_EQ(changed, static_cast<size_t>(testing::kLibtorchPythonUniqueSymbols));  // one st_info byte per symbol
  EXPECT_EQ(parseOrDie(out->image, "edited").uniqueSymbolCount(), 0);
}

// Every undefined symbol of that name, and nothing else (Note [Redirected references]).
TEST(ElfEditTest, RenamesUndefinedSymbols) {
  const std::string original = readTestFile(kLibz);
  const ElfFile before = parseOrDie(original, "libz.so.1");
  ElfEdits edits;
  edits.rename_undefined = {{"free", "pyfleet_redirect_free"}};
  absl::StatusOr<EditedImage> out = editElf(original, "libz.so.1", edits);
  ASSERT_TRUE(out.ok()) << out.status();
  const ElfFile after = parseOrDie(out->image, "edited");
  ASSERT_EQ(after.dynsymCount(), before.dynsymCount());
  int renamed = 0;
  for (uint64_t i = 0; i < before.dynsymCount(); ++i) {
    const std::string was = before.symbolName(i), now = after.symbolName(i);
    const bool undefined = before.symbol(i).st_shndx == SHN_UNDEF;
    if (undefined && was == "free") {
      EXPECT_EQ(now, "pyfleet_redirect_free");
      ++renamed;
    } else {
      EXPECT_EQ(now, was) << i;
    }
  }
  EXPECT_EQ(renamed, 1);
  EXPECT_EQ(after.needed(), before.needed());
  testing::ScratchDir scratch;
  const std::string path = scratch.pathOf("renamed.so");
  ASSERT_NO_FATAL_FAILURE(testing::writeFile(path, out->image));
  EXPECT_THAT(runCommand("readelf --dyn-syms -W " + path + " 2>&1"), HasSubstr("UND pyfleet_redirect_free"));

  // Only undefined symbols: a definition (libz's own deflate) is NotFound, as is a name
  // that is not there at all; an empty new name is refused.
  edits.rename_undefined = {{"deflate", "pyfleet_redirect_deflate"}};
  EXPECT_EQ(editElf(original, "libz.so.1", edits).status().code(), absl::StatusCode::kNotFound);
  edits.rename_undefined = {{"no_such_symbol", "x"}};
  EXPECT_EQ(editElf(original, "libz.so.1", edits).status().code(), absl::StatusCode::kNotFound);
  edits.rename_undefined = {{"free", ""}};
  EXPECT_EQ(editElf(original, "libz.so.1", edits).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ElfEditTest, EditedLibtorchPythonIsConsistentForReadelf) {
  const std::string original = readTestFile(kLibtorchPython);
  ElfEdits edits;
  edits.add_needed = {"/tmp/pyfleet-test/i00000001-interpreter.so"};
  edits.replace_needed = {{"libshm.so." PYFLEET_TORCH_SOVERSION, "/tmp/pyfleet-test/libshm-private.so"}};
  edits.soname = "/tmp/pyfleet-test/i00000001-d0001-libtorch_python.so." PYFLEET_TORCH_SOVERSION ".0";
  edits.demote_unique = true;
  absl::StatusOr<EditedImage> out = editElf(original, "libtorch_python.so." PYFLEET_TORCH_SOVERSION, edits);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->demoted, testing::kLibtorchPythonUniqueSymbols);
  const ElfFile after = parseOrDie(out->image, "edited");
  EXPECT_EQ(after.uniqueSymbolCount(), 0);
  EXPECT_TRUE(after.hasUndefinedPythonSymbols());

  testing::ScratchDir scratch;
  const std::string path = scratch.pathOf("edited.so");
  ASSERT_NO_FATAL_FAILURE(testing::writeFile(path, out->image));
  const std::string dynamic = runCommand("readelf -dW " + path + " 2>&1");
  EXPECT_THAT(dynamic, HasSubstr("Shared library: [/tmp/pyfleet-test/i00000001-interpreter.so]"));
  EXPECT_THAT(dynamic, HasSubstr("Shared library: [/tmp/pyfleet-test/libshm-private.so]"));
  EXPECT_THAT(dynamic, HasSubstr("Shared library: [libtorch_cpu.so." PYFLEET_TORCH_SOVERSION "]"));
  EXPECT_THAT(dynamic, HasSubstr(
      "Library soname: [/tmp/pyfleet-test/i00000001-d0001-libtorch_python.so." PYFLEET_TORCH_SOVERSION ".0]"));
  EXPECT_THAT(dynamic, ::testing::Not(HasSubstr("Warning")));
  const std::string segments = runCommand("readelf -lW " + path + " 2>&1");
  EXPECT_THAT(segments, ::testing::Not(HasSubstr("Warning")));
  EXPECT_THAT(segments, ::testing::Not(HasSubstr("Error")));
  const std::string symbols = runCommand("readelf --dyn-syms -W " + path + " 2>&1");
  EXPECT_THAT(symbols, ::testing::Not(HasSubstr(" UNIQUE ")));
  EXPECT_THAT(symbols, HasSubstr("PyExc_TypeError"));
}

TEST(ElfEditTest, EditedLibzLoadsAndItsNewNeededIsLoaded) {
  ElfEdits edits;
  edits.add_needed = {PYFLEET_TEST_NEEDED_MARKER};
  edits.soname = "libz-private-copy.so";
  absl::StatusOr<EditedImage> out = editElf(readTestFile(kLibz), "libz.so.1", edits);
  ASSERT_TRUE(out.ok()) << out.status();

  absl::StatusOr<std::unique_ptr<LibraryWorkspace>> ws = LibraryWorkspace::create();
  ASSERT_TRUE(ws.ok()) << ws.status();
  absl::StatusOr<void*> handle = (*ws)->loadImage("libz-private-copy.so", out->image);
  ASSERT_TRUE(handle.ok()) << handle.status();
  using VersionFn = const char* (*)();
  auto version = reinterpret_cast<VersionFn>(symbolOrFail(*handle, "zlibVersion"));
  ASSERT_NE(version, nullptr);
  EXPECT_THAT(std::string(version()), ::testing::StartsWith("1."));
  // dlsym on a handle searches the object's own dependencies: found only because the
  // added DT_NEEDED was loaded.
  using MarkerFn = int (*)();
  auto marker = reinterpret_cast<MarkerFn>(symbolOrFail(*handle, "pyfleet_test_needed_marker"));
  ASSERT_NE(marker, nullptr);
  EXPECT_EQ(marker(), 7);
}

TEST(ElfEditTest, EditedPieExecutableWithPtPhdrStillRuns) {
  // /usr/bin/true is ET_DYN with PT_PHDR, which the kernel and ld.so use to find the
  // program headers: running it checks that PT_PHDR was moved along with the table.
  const std::string original = readTestFile("/usr/bin/true");
  const ElfFile before = parseOrDie(original, "true");
  bool has_phdr = false;
  for (const Elf64_Phdr& ph : before.programHeaders()) has_phdr |= ph.p_type == PT_PHDR;
  ASSERT_TRUE(has_phdr);
  ElfEdits edits;
  edits.add_needed = {kLibz};
  absl::StatusOr<EditedImage> out = editElf(original, "true", edits);
  ASSERT_TRUE(out.ok()) << out.status();
  const ElfFile after = parseOrDie(out->image, "edited true");
  for (const Elf64_Phdr& ph : after.programHeaders()) {
    if (ph.p_type != PT_PHDR) continue;
    EXPECT_EQ(ph.p_offset, after.header().e_phoff);
    EXPECT_EQ(ph.p_filesz, after.programHeaders().size() * sizeof(Elf64_Phdr));
  }

  testing::ScratchDir scratch;
  const std::string path = scratch.pathOf("true");
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(out->image.data(), 1, out->image.size(), f), out->image.size());
    std::fclose(f);
  }
  ASSERT_EQ(::chmod(path.c_str(), 0700), 0);
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  pid_t pid;
  ASSERT_EQ(::posix_spawn(&pid, path.c_str(), nullptr, nullptr, argv, environ), 0);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "wait status " << wstatus;
}

TEST(ElfEditTest, RemovesSonameInPlace) {
  std::string image = readTestFile(kLibz);
  const size_t size = image.size();
  const ElfFile before = parseOrDie(image, "libz.so.1");
  ASSERT_EQ(before.soname(), "libz.so.1");
  std::optional<std::string> dynamic = dynamicWithoutSoname(before);
  ASSERT_TRUE(dynamic.has_value());
  ASSERT_EQ(dynamic->size(), before.dynamicEntries().size() * sizeof(Elf64_Dyn));
  const std::vector<std::string> needed = before.needed();
  const uint64_t offset = before.dynamicOffset();
  image.replace(offset, dynamic->size(), *dynamic);
  const ElfFile after = parseOrDie(image, "libz.so.1");
  EXPECT_EQ(after.soname(), std::nullopt);
  EXPECT_EQ(after.needed(), needed);
  EXPECT_EQ(image.size(), size);
  // One entry fewer before the DT_NULL, padded with DT_NULL behind it.
  EXPECT_EQ(after.dynamicEntries().size() + 1, before.dynamicEntries().size());
  EXPECT_EQ(dynamicWithoutSoname(after), std::nullopt);
  // The edited library still loads, known only by its path.
  absl::StatusOr<std::unique_ptr<LibraryWorkspace>> ws = LibraryWorkspace::create();
  ASSERT_TRUE(ws.ok()) << ws.status();
  absl::StatusOr<void*> handle = (*ws)->loadImage("libz-without-soname.so", image);
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_EQ(testing::sonameOf(*handle), std::nullopt);
  EXPECT_NE(symbolOrFail(*handle, "zlibVersion"), nullptr);
}

TEST(ElfEditTest, OverwriteBytesChecksBounds) {
  std::string image = "0123456789";
  EXPECT_TRUE(overwriteBytes(image, {1, 6}, "ab").ok());
  EXPECT_EQ(image, "0ab345ab89");
  absl::Status past = overwriteBytes(image, {2, 9}, "xy");
  EXPECT_EQ(past.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(image, "0ab345ab89");  // nothing written
}

}  // namespace
}  // namespace pyfleet::internal
