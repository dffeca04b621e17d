// Tests for loader/elf_file.h: parsing real Debian libraries, and clear errors (never a
// crash) for malformed inputs.
#include "loader/elf_file.h"

#include <elf.h>

#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loader_test_util.h"
#include "pyfleet/platform.h"

namespace pyfleet::internal {
namespace {

using ::pyfleet::internal::testing::getAt;
using ::pyfleet::internal::testing::kStdlibExtension;
using ::pyfleet::internal::testing::kLibtorchPython;
using ::pyfleet::internal::testing::kLibz;
using ::pyfleet::internal::testing::putAt;
using ::pyfleet::internal::testing::readTestFile;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ElfFileTest, ParsesLibtorchPython) {
  const std::string bytes = readTestFile(kLibtorchPython);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, "libtorch_python.so." PYFLEET_TORCH_SOVERSION);
  ASSERT_TRUE(elf.ok()) << elf.status();
  EXPECT_EQ(elf->soname(), "libtorch_python.so." PYFLEET_TORCH_SOVERSION);
  EXPECT_THAT(elf->needed(), Contains("libtorch_cpu.so." PYFLEET_TORCH_SOVERSION));
  EXPECT_THAT(elf->needed(), Contains("libc10.so." PYFLEET_TORCH_SOVERSION));
  EXPECT_EQ(elf->uniqueSymbolCount(), testing::kLibtorchPythonUniqueSymbols);
  EXPECT_TRUE(elf->hasUndefinedPythonSymbols());
  EXPECT_THAT(elf->firstUndefinedPythonSymbol(), ::testing::MatchesRegex("_?Py.*"));
  EXPECT_GE(elf->dynsymSectionIndex(), 0);
  EXPECT_GE(elf->dynstrSectionIndex(), 0);
  EXPECT_GE(elf->dynamicSectionIndex(), 0);
  EXPECT_EQ(elf->sectionHeaders()[elf->dynstrSectionIndex()].sh_offset, elf->dynstrOffset());
  EXPECT_EQ(elf->dynamicEntries().back().d_tag, DT_NULL);
  std::vector<std::string> verneed_files;
  for (const ElfFile::Verneed& v : elf->verneeds()) verneed_files.push_back(v.file);
  EXPECT_EQ(verneed_files.size(), 4u);  // DT_VERNEEDNUM
  EXPECT_THAT(verneed_files, Contains("libc.so.6"));
}

TEST(ElfFileTest, ParsesLibPythonExtensionWithoutNeeded) {
  const std::string bytes = readTestFile(kStdlibExtension);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, "_queue.so");
  ASSERT_TRUE(elf.ok()) << elf.status();
  // No libpython: its Py* symbols come from whichever CPython loads it (3.13's stdlib
  // extensions name libc.so.6, 3.11's nothing).
  for (const std::string& needed : elf->needed()) EXPECT_EQ(needed, "libc.so.6");
  EXPECT_TRUE(elf->hasUndefinedPythonSymbols());
  EXPECT_EQ(elf->uniqueSymbolCount(), 0);
}

TEST(ElfFileTest, LibzDoesNotDependOnPython) {
  const std::string bytes = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, "libz.so.1");
  ASSERT_TRUE(elf.ok()) << elf.status();
  EXPECT_EQ(elf->soname(), "libz.so.1");
  EXPECT_THAT(elf->needed(), Contains("libc.so.6"));
  EXPECT_FALSE(elf->hasUndefinedPythonSymbols());
  EXPECT_FALSE(elf->runpath().has_value());
  EXPECT_GT(elf->loadEnd(), 0u);
}

TEST(ElfFileTest, ExportsOfARealLibraryAndOfOneThatOnlyPullsInOthers) {
  const std::string libz = readTestFile(kLibz);
  absl::StatusOr<ElfFile> z = ElfFile::parse(libz, kLibz);
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_GT(z->definedSymbolCount(), 50u);
  EXPECT_FALSE(z->firstExportedSymbol().empty());
  // Debian's libtorch.so.1.13 defines only the linker's markers (_end, _edata,
  // __bss_start): nothing another object could bind to.
  const std::string stub = readTestFile("/usr/lib/x86_64-linux-gnu/libtorch.so." PYFLEET_TORCH_SOVERSION);
  absl::StatusOr<ElfFile> torch = ElfFile::parse(stub, "libtorch.so." PYFLEET_TORCH_SOVERSION);
  ASSERT_TRUE(torch.ok()) << torch.status();
  EXPECT_EQ(torch->definedSymbolCount(), 0u);
  EXPECT_TRUE(torch->firstExportedSymbol().empty());
  EXPECT_FALSE(torch->needed().empty());
}

TEST(ElfFileTest, ReadsRunpath) {
  const std::string bytes = readTestFile(PYFLEET_TEST_FAKE_EXTENSION);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, "fake_extension.so");
  ASSERT_TRUE(elf.ok()) << elf.status();
  EXPECT_EQ(elf->runpath(), "$ORIGIN");
  EXPECT_THAT(elf->needed(), Contains("libpyfleet_test_fake_python_dependency.so"));
}

TEST(ElfFileTest, FileOffsetOfMapsThroughLoadSegments) {
  const std::string bytes = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, "libz.so.1");
  ASSERT_TRUE(elf.ok()) << elf.status();
  const Elf64_Phdr& dyn = elf->programHeaders()[elf->dynamicPhdrIndex()];
  absl::StatusOr<uint64_t> offset = elf->fileOffsetOf(dyn.p_vaddr, dyn.p_filesz);
  ASSERT_TRUE(offset.ok()) << offset.status();
  EXPECT_EQ(*offset, dyn.p_offset);
  absl::StatusOr<uint64_t> outside = elf->fileOffsetOf(elf->loadEnd() + 0x10000, 8);
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(outside.status().message()), HasSubstr("not in the file part of any PT_LOAD"));
}

// --- malformed inputs -------------------------------------------------------------------

void expectError(const std::string& bytes, absl::StatusCode code, const std::string& message) {
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, "x.so");
  ASSERT_FALSE(elf.ok());
  EXPECT_EQ(elf.status().code(), code) << elf.status();
  EXPECT_EQ(elf.status().message(), message);
}

TEST(ElfFileTest, ParseDynamicOnlyReadsHeadersAndTheDynamicSection) {
  const std::string bytes = readTestFile(kLibtorchPython);
  absl::StatusOr<ElfFile> full = ElfFile::parse(bytes, "libtorch_python.so." PYFLEET_TORCH_SOVERSION);
  absl::StatusOr<ElfFile> dynamic = ElfFile::parseDynamicOnly(bytes, "libtorch_python.so." PYFLEET_TORCH_SOVERSION);
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_TRUE(dynamic.ok()) << dynamic.status();
  EXPECT_EQ(dynamic->soname(), "libtorch_python.so." PYFLEET_TORCH_SOVERSION);
  EXPECT_EQ(dynamic->needed(), full->needed());
  EXPECT_EQ(dynamic->runpath(), full->runpath());
  EXPECT_EQ(dynamic->dynamicOffset(), full->dynamicOffset());
  EXPECT_EQ(dynamic->dynamicEntries().size(), full->dynamicEntries().size());
  // Left empty, as for a file without section headers.
  EXPECT_TRUE(dynamic->sectionHeaders().empty());
  EXPECT_EQ(dynamic->dynsymCount(), 0u);
  EXPECT_TRUE(dynamic->verneeds().empty());
  EXPECT_FALSE(dynamic->hasUndefinedPythonSymbols());
  // Same errors as parse() for what it reads.
  absl::StatusOr<ElfFile> text = ElfFile::parseDynamicOnly("hello, world", "x.so");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(text.status().message()), HasSubstr("x.so: not an ELF file"));
}

TEST(ElfFileTest, RejectsNonElf) {
  expectError("", absl::StatusCode::kInvalidArgument, "x.so: not an ELF file");
  expectError("\x7f" "EL", absl::StatusCode::kInvalidArgument, "x.so: not an ELF file");
  expectError("#!/bin/sh\necho hello\n", absl::StatusCode::kInvalidArgument,
              "x.so: not an ELF file");
}

TEST(ElfFileTest, Rejects32BitElf) {
  std::string bytes(52, '\0');  // an Elf32_Ehdr
  bytes.replace(0, 4, ELFMAG);
  bytes[EI_CLASS] = ELFCLASS32;
  bytes[EI_DATA] = ELFDATA2LSB;
  expectError(bytes, absl::StatusCode::kUnimplemented, "x.so: 32-bit ELF is not supported");
}

TEST(ElfFileTest, RejectsBigEndianAndOtherMachines) {
  std::string bytes = readTestFile(kLibz);
  std::string big = bytes;
  big[EI_DATA] = ELFDATA2MSB;
  expectError(big, absl::StatusCode::kUnimplemented, "x.so: big-endian ELF is not supported");
  std::string arm = bytes;
  putAt<Elf64_Half>(arm, offsetof(Elf64_Ehdr, e_machine), EM_AARCH64);
  expectError(arm, absl::StatusCode::kUnimplemented,
              "x.so: machine 183 is not supported (only x86-64)");
}

TEST(ElfFileTest, RejectsExecutables) {
  std::string bytes = readTestFile(kLibz);
  putAt<Elf64_Half>(bytes, offsetof(Elf64_Ehdr, e_type), ET_EXEC);
  expectError(bytes, absl::StatusCode::kInvalidArgument, "x.so: not a shared object (e_type=2)");
}

TEST(ElfFileTest, RejectsMissingPtDynamic) {
  std::string bytes = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, "libz.so.1");
  ASSERT_TRUE(elf.ok()) << elf.status();
  const uint64_t ph = elf->header().e_phoff + elf->dynamicPhdrIndex() * sizeof(Elf64_Phdr);
  const int phnum = elf->header().e_phnum;
  putAt<Elf64_Word>(bytes, ph + offsetof(Elf64_Phdr, p_type), PT_NULL);
  absl::StatusOr<ElfFile> broken = ElfFile::parse(bytes, "libfoo.so");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().message(),
            "libfoo.so: no PT_DYNAMIC segment (e_phnum=" + std::to_string(phnum) + ")");
}

TEST(ElfFileTest, RejectsHugePhnum) {
  std::string bytes = readTestFile(kLibz);
  putAt<Elf64_Half>(bytes, offsetof(Elf64_Ehdr, e_phnum), 65534);
  expectError(bytes, absl::StatusCode::kInvalidArgument,
              "x.so: truncated: program header table ends at " +
                  std::to_string(64 + 65534 * 56) + " > file size " +
                  std::to_string(bytes.size()));
  putAt<Elf64_Half>(bytes, offsetof(Elf64_Ehdr, e_phnum), PN_XNUM);
  expectError(bytes, absl::StatusCode::kUnimplemented,
              "x.so: extended program header numbering is not supported");
}

TEST(ElfFileTest, RejectsOffsetsPastTheEnd) {
  const std::string good = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(good, "libz.so.1");
  ASSERT_TRUE(elf.ok()) << elf.status();
  {
    std::string bytes = good;
    putAt<Elf64_Off>(bytes, offsetof(Elf64_Ehdr, e_phoff), ~uint64_t{0} - 8);
    absl::StatusOr<ElfFile> r = ElfFile::parse(bytes, "x.so");
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("x.so: program header table at offset"));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("overflows"));
  }
  {
    std::string bytes = good;
    putAt<Elf64_Off>(bytes, offsetof(Elf64_Ehdr, e_shoff), bytes.size() - 10);
    absl::StatusOr<ElfFile> r = ElfFile::parse(bytes, "x.so");
    EXPECT_THAT(std::string(r.status().message()), StartsWith("x.so: truncated: section header table ends at"));
  }
  // Dynamic entries: DT_STRTAB pointing nowhere, DT_NEEDED past the string table.
  const uint64_t dyn = elf->dynamicOffset();
  for (size_t i = 0; i < elf->dynamicEntries().size(); ++i) {
    const Elf64_Dyn d = elf->dynamicEntries()[i];
    const uint64_t at = dyn + i * sizeof(Elf64_Dyn) + offsetof(Elf64_Dyn, d_un);
    std::string bytes = good;
    if (d.d_tag == DT_STRTAB) {
      putAt<Elf64_Addr>(bytes, at, 0x7fff0000);
      absl::StatusOr<ElfFile> r = ElfFile::parse(bytes, "x.so");
      EXPECT_THAT(std::string(r.status().message()),
                  HasSubstr("x.so: address 0x7fff0000 (size"));
    } else if (d.d_tag == DT_NEEDED) {
      putAt<Elf64_Xword>(bytes, at, 1u << 30);
      absl::StatusOr<ElfFile> r = ElfFile::parse(bytes, "x.so");
      EXPECT_THAT(std::string(r.status().message()),
                  HasSubstr("x.so: string offset 1073741824 is outside the dynamic string"));
    }
  }
  {
    std::string bytes = good;
    const uint64_t sh = elf->header().e_shoff + elf->dynsymSectionIndex() * sizeof(Elf64_Shdr);
    putAt<Elf64_Off>(bytes, sh + offsetof(Elf64_Shdr, sh_offset), bytes.size());
    absl::StatusOr<ElfFile> r = ElfFile::parse(bytes, "x.so");
    EXPECT_THAT(std::string(r.status().message()), StartsWith("x.so: truncated: .dynsym section ends at"));
  }
  {
    std::string bytes = good;  // a dynamic section without DT_NULL
    for (size_t i = 0; i < elf->programHeaders()[elf->dynamicPhdrIndex()].p_filesz / 16; ++i) {
      putAt<Elf64_Sxword>(bytes, dyn + i * sizeof(Elf64_Dyn), DT_DEBUG);
    }
    expectError(bytes, absl::StatusCode::kInvalidArgument,
                "x.so: the dynamic section has no DT_NULL terminator");
  }
}

// Found with tests/fuzz/elf_edit_fuzzer's oracle: libz with its last PT_LOAD reaching
// 2^64 - 1 parsed, and editElf then placed its new segment at address 0 (alignUp wrapped).
TEST(ElfFileTest, RejectsLoadSegmentBeyondTheAddressSpace) {
  std::string bytes = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, "libz.so.1");
  ASSERT_TRUE(elf.ok()) << elf.status();
  size_t last = 0;
  for (size_t i = 0; i < elf->programHeaders().size(); ++i) {
    if (elf->programHeaders()[i].p_type == PT_LOAD) last = i;
  }
  const Elf64_Phdr ph = elf->programHeaders()[last];
  const uint64_t at = elf->header().e_phoff + last * sizeof(Elf64_Phdr) + offsetof(Elf64_Phdr, p_memsz);
  putAt<Elf64_Xword>(bytes, at, ~uint64_t{0} - ph.p_vaddr);  // ends at 2^64 - 1: no overflow
  for (bool dynamic_only : {false, true}) {
    absl::StatusOr<ElfFile> r = dynamic_only ? ElfFile::parseDynamicOnly(bytes, "x.so")
                                             : ElfFile::parse(bytes, "x.so");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()),
                HasSubstr("x.so: PT_LOAD segment " + std::to_string(last) +
                          " ends at 0xffffffffffffffff, beyond the x86-64 address space"));
  }
  putAt<Elf64_Xword>(bytes, at, (uint64_t{1} << 56) - ph.p_vaddr);  // the last one allowed
  EXPECT_TRUE(ElfFile::parse(bytes, "x.so").ok());
}

// Truncating a real library anywhere gives an error naming the file and the part that
// is cut.
class ElfFileTruncationTest : public ::testing::TestWithParam<int> {};

TEST_P(ElfFileTruncationTest, NamesTheCutPart) {
  const std::string good = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(good, "libz.so.1");
  ASSERT_TRUE(elf.ok()) << elf.status();
  const Elf64_Phdr* first_load = nullptr;
  for (const Elf64_Phdr& ph : elf->programHeaders()) {
    if (ph.p_type == PT_LOAD && ph.p_filesz > 0) {
      first_load = &ph;
      break;
    }
  }
  ASSERT_NE(first_load, nullptr);
  struct Cut {
    uint64_t size;
    std::string message;
  };
  const std::vector<Cut> cuts = {
      {10, "libz.so.1: truncated: ELF header ends at 64 > file size 10"},
      {100, "libz.so.1: truncated: program header table ends at " +
                std::to_string(64 + elf->header().e_phnum * 56) + " > file size 100"},
      {first_load->p_offset + first_load->p_filesz - 1,
       "libz.so.1: truncated: PT_LOAD segment"},
      {elf->header().e_shoff + 10, "libz.so.1: truncated: section header table ends at"},
  };
  const Cut& cut = cuts[GetParam()];
  absl::StatusOr<ElfFile> r = ElfFile::parse(good.substr(0, cut.size), "libz.so.1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), StartsWith(cut.message));
}

INSTANTIATE_TEST_SUITE_P(Cuts, ElfFileTruncationTest, ::testing::Values(0, 1, 2, 3));

TEST(ElfFileTest, SurvivesRandomCorruption) {
  // Deterministic byte corruption of the header, program headers, dynamic section and
  // section headers: parse must never crash and every error must name the file.
  const std::string good = readTestFile(kLibz);
  absl::StatusOr<ElfFile> elf = ElfFile::parse(good, "libz.so.1");
  ASSERT_TRUE(elf.ok()) << elf.status();
  const std::vector<std::pair<uint64_t, uint64_t>> regions = {
      {0, 64 + elf->header().e_phnum * 56u},
      {elf->dynamicOffset(), elf->dynamicEntries().size() * sizeof(Elf64_Dyn)},
      {elf->header().e_shoff, elf->header().e_shnum * sizeof(Elf64_Shdr)},
      {elf->dynsymOffset(), 24 * 8}};
  std::mt19937_64 rng(12345);
  int failures = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string bytes = good;
    const auto& [start, size] = regions[i % regions.size()];
    for (int k = 0; k < 1 + i % 4; ++k) {
      bytes[start + rng() % size] = static_cast<char>(rng());
    }
    absl::StatusOr<ElfFile> r = ElfFile::parse(bytes, "corrupt.so");
    if (!r.ok()) {
      ++failures;
      ASSERT_THAT(std::string(r.status().message()), StartsWith("corrupt.so: ")) << r.status();
    }
  }
  EXPECT_GT(failures, 100);  // the corruption did hit checked fields
}

}  // namespace
}  // namespace pyfleet::internal
