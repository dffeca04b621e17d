// Tests for loader/self_binding.h on Debian's libtorch_python.so.1.13, the library it is
// for (about 9,200 relocations against symbols it defines itself), and on edge cases.
#include "loader/self_binding.h"

#include <elf.h>

#include <cstring>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loader/elf_file.h"
#include "loader_test_util.h"

namespace pyfleet::internal {
namespace {

using ::pyfleet::internal::testing::kLibtorchPython;
using ::pyfleet::internal::testing::kLibz;
using ::pyfleet::internal::testing::readTestFile;

// Every symbol relocation (R_X86_64_64, _GLOB_DAT, _JUMP_SLOT) of `elf`: {file offset,
// entry}, read through the section headers (independently of the code under test).
std::vector<std::pair<uint64_t, Elf64_Rela>> symbolRelocations(const ElfFile& elf) {
  std::vector<std::pair<uint64_t, Elf64_Rela>> out;
  for (const Elf64_Shdr& sh : elf.sectionHeaders()) {
    if (sh.sh_type != SHT_RELA) continue;
    for (uint64_t at = sh.sh_offset; at + sizeof(Elf64_Rela) <= sh.sh_offset + sh.sh_size;
         at += sizeof(Elf64_Rela)) {
      Elf64_Rela r;
      std::memcpy(&r, elf.bytes().data() + at, sizeof(r));
      const uint32_t type = ELF64_R_TYPE(r.r_info);
      if (type == R_X86_64_64 || type == R_X86_64_GLOB_DAT || type == R_X86_64_JUMP_SLOT) {
        out.emplace_back(at, r);
      }
    }
  }
  return out;
}

std::string nameOf(const ElfFile& elf, const Elf64_Sym& sym) {
  return std::string(elf.dynstr().substr(sym.st_name).data());
}

TEST(SelfBindingTest, SelfReferencesBecomeRelativeWithTheSymbolValueAsAddend) {
  const std::string original = readTestFile(kLibtorchPython);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(original, "libtorch_python");
  ASSERT_TRUE(elf.ok()) << elf.status();
  std::string image = original;
  absl::StatusOr<SelfBindingCount> n = bindSelfReferences(*elf, image, [](const char*) { return false; });
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GT(n->rewritten, 8000);
  EXPECT_GT(n->examined, n->rewritten);  // references to LibTorch, libstdc++, Python stay

  int checked = 0;
  for (const auto& [offset, before] : symbolRelocations(*elf)) {
    Elf64_Rela after;
    std::memcpy(&after, image.data() + offset, sizeof(after));
    const Elf64_Sym sym = elf->symbol(ELF64_R_SYM(before.r_info));
    if (sym.st_shndx == SHN_UNDEF) {
      EXPECT_EQ(std::memcmp(&after, &before, sizeof(after)), 0) << "undefined " << nameOf(*elf, sym);
      continue;
    }
    if (ELF64_R_TYPE(after.r_info) != R_X86_64_RELATIVE) continue;
    EXPECT_EQ(ELF64_R_SYM(after.r_info), 0u);
    EXPECT_EQ(after.r_offset, before.r_offset);
    const int64_t addend = ELF64_R_TYPE(before.r_info) == R_X86_64_64 ? before.r_addend : 0;
    EXPECT_EQ(after.r_addend, static_cast<int64_t>(sym.st_value) + addend) << nameOf(*elf, sym);
    EXPECT_NE(ELF64_ST_TYPE(sym.st_info), STT_GNU_IFUNC);
    EXPECT_NE(ELF64_ST_TYPE(sym.st_info), STT_TLS);
    ++checked;
  }
  EXPECT_EQ(checked, n->rewritten);
  // Nothing but relocation entries changed.
  size_t differing = 0;
  for (size_t i = 0; i < image.size(); ++i) differing += image[i] != original[i];
  EXPECT_LE(differing, static_cast<size_t>(n->rewritten) * sizeof(Elf64_Rela));
  EXPECT_TRUE(ElfFile::parse(image, "bound").ok());
}

TEST(SelfBindingTest, NamesDefinedInTheGlobalScopeAreLeftToTheDynamicLinker) {
  const std::string original = readTestFile(kLibtorchPython);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(original, "libtorch_python");
  ASSERT_TRUE(elf.ok()) << elf.status();
  std::string everything_global = original;
  absl::StatusOr<SelfBindingCount> none =
      bindSelfReferences(*elf, everything_global, [](const char*) { return true; });
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->rewritten, 0);
  EXPECT_TRUE(everything_global == original);

  // One interposed name: its relocations stay symbolic, the others are rewritten.
  std::set<std::string> asked;
  std::string image = original;
  std::string interposed;
  absl::StatusOr<SelfBindingCount> some = bindSelfReferences(*elf, image, [&](const char* name) {
    const bool first = asked.empty();
    asked.insert(name);
    if (first) interposed = name;
    return first;
  });
  ASSERT_TRUE(some.ok()) << some.status();
  EXPECT_GT(some->rewritten, 8000);
  ASSERT_FALSE(interposed.empty());
  int kept = 0;
  for (const auto& [offset, before] : symbolRelocations(*elf)) {
    if (nameOf(*elf, elf->symbol(ELF64_R_SYM(before.r_info))) != interposed) continue;
    EXPECT_EQ(std::memcmp(image.data() + offset, &before, sizeof(before)), 0);
    ++kept;
  }
  EXPECT_GT(kept, 0);
}

TEST(SelfBindingTest, AnImageOfAnotherSizeIsLeftAlone) {
  const std::string original = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(original, "libz");
  ASSERT_TRUE(elf.ok()) << elf.status();
  std::string shorter = original.substr(0, original.size() / 2);
  absl::StatusOr<SelfBindingCount> n = bindSelfReferences(*elf, shorter, [](const char*) { return false; });
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->examined, 0);
}

}  // namespace
}  // namespace pyfleet::internal
