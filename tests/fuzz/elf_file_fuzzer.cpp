// File: elf_file_fuzzer.cpp
//
// libFuzzer target: ElfFile::parse and ElfFile::parseDynamicOnly (loader/elf_file.h) on
// arbitrary bytes, then every accessor of what parsed. Contract: InvalidArgument or
// Unimplemented, never a read outside the input (the bytes are copied into a buffer of
// exactly their size, so ASan sees every overread); the two parsers agree on what they
// both read; every string an accessor hands out lies in the dynamic string table.
//
//   scripts/fuzz elf_file_fuzzer 60
#include <cstdint>
#include <memory>
#include <string>

#include "loader/elf_edit.h"
#include "loader/elf_file.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using absl::StatusCode;
using pyfleet::internal::ElfFile;

void CheckAccessors(const ElfFile& elf, absl::string_view bytes) {
  PYFLEET_FUZZ_CHECK(elf.dynamicPhdrIndex() < elf.programHeaders().size(), "PT_DYNAMIC index");
  PYFLEET_FUZZ_CHECK(!elf.dynamicEntries().empty() && elf.dynamicEntries().back().d_tag == DT_NULL,
                     "dynamic entries end with DT_NULL");
  PYFLEET_FUZZ_CHECK(elf.dynstrOffset() <= bytes.size() &&
                         elf.dynstr().size() <= bytes.size() - elf.dynstrOffset(),
                     "dynstr inside the file");
  for (const Elf64_Dyn& d : elf.dynamicEntries()) {
    // Any value, valid or not, as a string offset: an error or a string in the table.
    absl::StatusOr<absl::string_view> s = elf.dynamicString(d.d_un.d_val);
    if (!s.ok()) {
      PYFLEET_FUZZ_EXPECT_CODE(s.status(), "dynamicString", StatusCode::kInvalidArgument);
    } else {
      PYFLEET_FUZZ_CHECK(s->data() >= elf.dynstr().data() &&
                             s->data() + s->size() < elf.dynstr().data() + elf.dynstr().size(),
                         "dynamicString outside the table");
    }
    absl::StatusOr<uint64_t> off = elf.fileOffsetOf(d.d_un.d_ptr, 8);
    if (off.ok()) PYFLEET_FUZZ_CHECK(*off <= bytes.size() && 8 <= bytes.size() - *off, "fileOffsetOf");
  }
  for (const ElfFile::Verneed& v : elf.verneeds()) {
    PYFLEET_FUZZ_CHECK(v.offset <= bytes.size() && sizeof(Elf64_Verneed) <= bytes.size() - v.offset,
                       "verneed offset");
  }
  uint64_t unique = 0;
  for (uint64_t i = 0; i < elf.dynsymCount(); ++i) {
    unique += ELF64_ST_BIND(elf.symbol(i).st_info) == STB_GNU_UNIQUE;
  }
  PYFLEET_FUZZ_CHECK(unique == static_cast<uint64_t>(elf.uniqueSymbolCount()), "unique count");
  for (int index : {elf.dynamicSectionIndex(), elf.dynstrSectionIndex(), elf.dynsymSectionIndex()}) {
    PYFLEET_FUZZ_CHECK(index < 0 || static_cast<size_t>(index) < elf.sectionHeaders().size(),
                       "section index");
  }
  (void)elf.dynamicValue(DT_STRTAB);
  (void)pyfleet::internal::dynamicWithoutSoname(elf);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy: one byte past it is an ASan report.
  std::unique_ptr<char[]> copy(new char[size]);
  if (size > 0) std::memcpy(copy.get(), data, size);
  const absl::string_view bytes(copy.get(), size);

  absl::StatusOr<ElfFile> dyn = ElfFile::parseDynamicOnly(bytes, "fuzz.so");
  absl::StatusOr<ElfFile> full = ElfFile::parse(bytes, "fuzz.so");
  if (!dyn.ok()) {
    PYFLEET_FUZZ_EXPECT_CODE(dyn.status(), "ElfFile::parseDynamicOnly",
                             StatusCode::kInvalidArgument, StatusCode::kUnimplemented);
    PYFLEET_FUZZ_CHECK(!full.ok() && full.status() == dyn.status(),
                       "parse() accepts what parseDynamicOnly() rejects");
    return 0;
  }
  CheckAccessors(*dyn, bytes);
  PYFLEET_FUZZ_CHECK(dyn->sectionHeaders().empty() && dyn->dynsymCount() == 0 &&
                         dyn->verneeds().empty(),
                     "parseDynamicOnly read more than the dynamic section");
  if (!full.ok()) {
    PYFLEET_FUZZ_EXPECT_CODE(full.status(), "ElfFile::parse", StatusCode::kInvalidArgument,
                             StatusCode::kUnimplemented);
    return 0;
  }
  CheckAccessors(*full, bytes);
  PYFLEET_FUZZ_CHECK(full->needed() == dyn->needed() && full->soname() == dyn->soname() &&
                         full->runpath() == dyn->runpath() && full->rpath() == dyn->rpath(),
                     "parse() and parseDynamicOnly() disagree");
  return 0;
}
