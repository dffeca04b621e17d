// Parsing and validation of ELF64 x86-64 shared objects; see elf_file.h.
#include "loader/elf_file.h"

#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "loader/base/status_macros.h"

namespace pyfleet::internal {
namespace {

// The largest address a segment may reach: x86-64 user space with 5-level paging (57-bit
// virtual addresses, the upper half is the kernel's).
constexpr uint64_t kMaxLoadAddress = uint64_t{1} << 56;

bool isPythonSymbolName(absl::string_view table, uint64_t offset) {
  // Compares at most 3 bytes, stopping at the end of the table (a NUL ends the name).
  auto at = [&](uint64_t i) { return offset + i < table.size() ? table[offset + i] : '\0'; };
  if (at(0) == 'P' && at(1) == 'y') return true;
  return at(0) == '_' && at(1) == 'P' && at(2) == 'y';
}

}  // namespace

absl::StatusOr<ElfFile> ElfFile::parse(absl::string_view bytes, std::string file_name) {
  ElfFile elf;
  elf.bytes_ = bytes;
  elf.file_name_ = std::move(file_name);
  PYFLEET_RETURN_IF_ERROR(elf.parseHeader());
  PYFLEET_RETURN_IF_ERROR(elf.parseProgramHeaders());
  PYFLEET_RETURN_IF_ERROR(elf.parseDynamic());
  PYFLEET_RETURN_IF_ERROR(elf.parseVerneed());
  PYFLEET_RETURN_IF_ERROR(elf.parseSections());
  PYFLEET_RETURN_IF_ERROR(elf.parseDynsym());
  return elf;
}

absl::StatusOr<ElfFile> ElfFile::parseDynamicOnly(absl::string_view bytes, std::string file_name) {
  ElfFile elf;
  elf.bytes_ = bytes;
  elf.file_name_ = std::move(file_name);
  PYFLEET_RETURN_IF_ERROR(elf.parseHeader());
  PYFLEET_RETURN_IF_ERROR(elf.parseProgramHeaders());
  PYFLEET_RETURN_IF_ERROR(elf.parseDynamic());
  return elf;
}

absl::Status ElfFile::error(absl::string_view what) const {
  return absl::InvalidArgumentError(absl::StrCat(file_name_, ": ", what));
}

absl::Status ElfFile::checkRange(uint64_t offset, uint64_t size, absl::string_view what) const {
  uint64_t end = 0;
  if (__builtin_add_overflow(offset, size, &end)) {
    return error(absl::StrFormat("%s at offset %d with size %d overflows", what, offset, size));
  }
  if (end > bytes_.size()) {
    return error(absl::StrFormat("truncated: %s ends at %d > file size %d", what, end,
                                 bytes_.size()));
  }
  return absl::OkStatus();
}

absl::Status ElfFile::parseHeader() {
  if (bytes_.size() < SELFMAG || std::memcmp(bytes_.data(), ELFMAG, SELFMAG) != 0) {
    return error("not an ELF file");
  }
  if (bytes_.size() > EI_CLASS && bytes_[EI_CLASS] != ELFCLASS64) {
    if (bytes_[EI_CLASS] == ELFCLASS32) {
      return absl::UnimplementedError(absl::StrCat(file_name_, ": 32-bit ELF is not supported"));
    }
    return error(absl::StrCat("unknown ELF class ", static_cast<int>(bytes_[EI_CLASS])));
  }
  if (bytes_.size() > EI_DATA && bytes_[EI_DATA] != ELFDATA2LSB) {
    return absl::UnimplementedError(
        absl::StrCat(file_name_, ": big-endian ELF is not supported"));
  }
  PYFLEET_RETURN_IF_ERROR(checkRange(0, sizeof(Elf64_Ehdr), "ELF header"));
  header_ = readAt<Elf64_Ehdr>(bytes_, 0);
  if (header_.e_type != ET_DYN) {
    return error(absl::StrCat("not a shared object (e_type=", header_.e_type, ")"));
  }
  if (header_.e_machine != EM_X86_64) {
    return absl::UnimplementedError(absl::StrCat(
        file_name_, ": machine ", header_.e_machine, " is not supported (only x86-64)"));
  }
  if (header_.e_phentsize != sizeof(Elf64_Phdr)) {
    return error(absl::StrCat("e_phentsize=", header_.e_phentsize, ", expected ",
                              sizeof(Elf64_Phdr)));
  }
  if (header_.e_phnum == PN_XNUM) {
    return absl::UnimplementedError(
        absl::StrCat(file_name_, ": extended program header numbering is not supported"));
  }
  return absl::OkStatus();
}

absl::Status ElfFile::parseProgramHeaders() {
  const uint64_t table_size = uint64_t{header_.e_phnum} * sizeof(Elf64_Phdr);
  PYFLEET_RETURN_IF_ERROR(checkRange(header_.e_phoff, table_size, "program header table"));
  phdrs_.reserve(header_.e_phnum);
  bool have_dynamic = false;
  for (size_t i = 0; i < header_.e_phnum; ++i) {
    const Elf64_Phdr ph = readAt<Elf64_Phdr>(bytes_, header_.e_phoff + i * sizeof(Elf64_Phdr));
    phdrs_.push_back(ph);
    if (ph.p_type == PT_LOAD) {
      PYFLEET_RETURN_IF_ERROR(
          checkRange(ph.p_offset, ph.p_filesz, absl::StrCat("PT_LOAD segment ", i)));
      uint64_t end = 0;
      if (ph.p_filesz > ph.p_memsz || __builtin_add_overflow(ph.p_vaddr, ph.p_memsz, &end)) {
        return error(absl::StrFormat("PT_LOAD segment %d has bad sizes (filesz %d, memsz %d)", i,
                                     ph.p_filesz, ph.p_memsz));
      }
      // No x86-64 process can map it, and editElf appends a segment page-aligned above
      // loadEnd(), which must not wrap around to address 0 (ElfEditTest.
      // RejectsSegmentsAtTheTopOfTheAddressSpace).
      if (end > kMaxLoadAddress) {
        return error(absl::StrFormat("PT_LOAD segment %d ends at 0x%x, beyond the x86-64 "
                                     "address space (0x%x)",
                                     i, end, kMaxLoadAddress));
      }
      if (end > load_end_) load_end_ = end;
    } else if (ph.p_type == PT_DYNAMIC) {
      if (have_dynamic) return error("more than one PT_DYNAMIC segment");
      have_dynamic = true;
      dynamic_phdr_index_ = i;
    }
  }
  if (!have_dynamic) {
    return error(absl::StrCat("no PT_DYNAMIC segment (e_phnum=", header_.e_phnum, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ElfFile::fileOffsetOf(uint64_t vaddr, uint64_t size) const {
  for (const Elf64_Phdr& ph : phdrs_) {
    if (ph.p_type != PT_LOAD || vaddr < ph.p_vaddr) continue;
    const uint64_t delta = vaddr - ph.p_vaddr;
    if (delta <= ph.p_filesz && size <= ph.p_filesz - delta) return ph.p_offset + delta;
  }
  return error(absl::StrFormat("address 0x%x (size %d) is not in the file part of any PT_LOAD",
                               vaddr, size));
}

absl::StatusOr<absl::string_view> ElfFile::dynamicString(uint64_t offset) const {
  const absl::string_view table = dynstr();
  if (offset >= table.size()) {
    return error(absl::StrFormat(
        "string offset %d is outside the dynamic string table (size %d)", offset, table.size()));
  }
  const size_t end = table.find('\0', offset);
  if (end == absl::string_view::npos) {
    return error(absl::StrFormat("string at offset %d of the dynamic string table is not "
                                 "NUL-terminated",
                                 offset));
  }
  return table.substr(offset, end - offset);
}

absl::Status ElfFile::parseDynamic() {
  const Elf64_Phdr& ph = phdrs_[dynamic_phdr_index_];
  PYFLEET_RETURN_IF_ERROR(checkRange(ph.p_offset, ph.p_filesz, "PT_DYNAMIC segment"));
  // The loader reads .dynamic at its address; check that it is the same bytes.
  auto mapped = fileOffsetOf(ph.p_vaddr, ph.p_filesz);
  if (!mapped.ok() || *mapped != ph.p_offset) {
    return error(absl::StrFormat(
        "PT_DYNAMIC at offset 0x%x does not match the PT_LOAD mapping of its address 0x%x",
        ph.p_offset, ph.p_vaddr));
  }
  dynamic_offset_ = ph.p_offset;
  const uint64_t count = ph.p_filesz / sizeof(Elf64_Dyn);
  bool terminated = false;
  for (uint64_t i = 0; i < count && !terminated; ++i) {
    const Elf64_Dyn d = readAt<Elf64_Dyn>(bytes_, ph.p_offset + i * sizeof(Elf64_Dyn));
    dynamic_.push_back(d);
    terminated = d.d_tag == DT_NULL;
  }
  if (!terminated) return error("the dynamic section has no DT_NULL terminator");

  std::optional<uint64_t> strtab, strsz;
  for (const Elf64_Dyn& d : dynamic_) {
    if (d.d_tag == DT_STRTAB) strtab = d.d_un.d_ptr;
    if (d.d_tag == DT_STRSZ) strsz = d.d_un.d_val;
  }
  if (!strtab || !strsz) return error("the dynamic section has no DT_STRTAB or no DT_STRSZ");
  PYFLEET_ASSIGN_OR_RETURN(dynstr_offset_, fileOffsetOf(*strtab, *strsz));
  dynstr_size_ = *strsz;

  for (const Elf64_Dyn& d : dynamic_) {
    std::optional<std::string>* single = nullptr;
    switch (d.d_tag) {
      case DT_NEEDED: {
        PYFLEET_ASSIGN_OR_RETURN(absl::string_view name, dynamicString(d.d_un.d_val));
        needed_.emplace_back(name);
        continue;
      }
      case DT_SONAME: single = &soname_; break;
      case DT_RUNPATH: single = &runpath_; break;
      case DT_RPATH: single = &rpath_; break;
      default: continue;
    }
    PYFLEET_ASSIGN_OR_RETURN(absl::string_view value, dynamicString(d.d_un.d_val));
    *single = std::string(value);
  }
  return absl::OkStatus();
}

absl::Status ElfFile::parseVerneed() {
  std::optional<uint64_t> address, count;
  for (const Elf64_Dyn& d : dynamic_) {
    if (d.d_tag == DT_VERNEED) address = d.d_un.d_ptr;
    if (d.d_tag == DT_VERNEEDNUM) count = d.d_un.d_val;
  }
  if (!address || !count) return absl::OkStatus();
  if (*count > 65536) return error(absl::StrCat("implausible DT_VERNEEDNUM=", *count));
  for (uint64_t i = 0; i < *count; ++i) {
    PYFLEET_ASSIGN_OR_RETURN(uint64_t offset, fileOffsetOf(*address, sizeof(Elf64_Verneed)));
    const Elf64_Verneed entry = readAt<Elf64_Verneed>(bytes_, offset);
    PYFLEET_ASSIGN_OR_RETURN(absl::string_view file, dynamicString(entry.vn_file));
    verneeds_.push_back(Verneed{offset, std::string(file)});
    if (entry.vn_next == 0) break;
    if (__builtin_add_overflow(*address, uint64_t{entry.vn_next}, &*address)) {
      return error("DT_VERNEED chain overflows");
    }
  }
  return absl::OkStatus();
}

absl::Status ElfFile::parseSections() {
  if (header_.e_shnum == 0) return absl::OkStatus();
  if (header_.e_shentsize != sizeof(Elf64_Shdr)) {
    return error(absl::StrCat("e_shentsize=", header_.e_shentsize, ", expected ",
                              sizeof(Elf64_Shdr)));
  }
  const uint64_t table_size = uint64_t{header_.e_shnum} * sizeof(Elf64_Shdr);
  PYFLEET_RETURN_IF_ERROR(checkRange(header_.e_shoff, table_size, "section header table"));
  shdrs_.reserve(header_.e_shnum);
  for (size_t i = 0; i < header_.e_shnum; ++i) {
    shdrs_.push_back(readAt<Elf64_Shdr>(bytes_, header_.e_shoff + i * sizeof(Elf64_Shdr)));
  }
  for (size_t i = 0; i < shdrs_.size(); ++i) {
    const Elf64_Shdr& sh = shdrs_[i];
    if (sh.sh_type == SHT_DYNAMIC && dynamic_section_ < 0) dynamic_section_ = static_cast<int>(i);
    if (sh.sh_type == SHT_DYNSYM && dynsym_section_ < 0) dynsym_section_ = static_cast<int>(i);
    if (sh.sh_type == SHT_STRTAB && sh.sh_offset == dynstr_offset_ && dynstr_section_ < 0) {
      dynstr_section_ = static_cast<int>(i);
    }
  }
  return absl::OkStatus();
}

std::string ElfFile::symbolName(uint64_t index) const {
  const Elf64_Sym sym = symbol(index);
  const absl::string_view names = bytes_.substr(dynsym_names_offset_, dynsym_names_size_);
  if (sym.st_name >= names.size()) return "";
  const size_t end = names.find('\0', sym.st_name);
  if (end == absl::string_view::npos) return "";
  return std::string(names.substr(sym.st_name, end - sym.st_name));
}

std::optional<uint64_t> ElfFile::dynamicValue(int64_t tag) const {
  for (const Elf64_Dyn& d : dynamic_) {
    if (d.d_tag == tag) return d.d_un.d_val;
  }
  return std::nullopt;
}

absl::Status ElfFile::parseDynsym() {
  if (dynsym_section_ < 0) return absl::OkStatus();
  const Elf64_Shdr& sh = shdrs_[dynsym_section_];
  if (sh.sh_entsize != sizeof(Elf64_Sym)) {
    return error(absl::StrCat(".dynsym has sh_entsize=", sh.sh_entsize, ", expected ",
                              sizeof(Elf64_Sym)));
  }
  PYFLEET_RETURN_IF_ERROR(checkRange(sh.sh_offset, sh.sh_size, ".dynsym section"));
  if (sh.sh_link >= shdrs_.size()) {
    return error(absl::StrCat(".dynsym has sh_link=", sh.sh_link, " but e_shnum=",
                              shdrs_.size()));
  }
  const Elf64_Shdr& str = shdrs_[sh.sh_link];
  PYFLEET_RETURN_IF_ERROR(checkRange(str.sh_offset, str.sh_size, ".dynsym's string table"));
  const absl::string_view names = bytes_.substr(str.sh_offset, str.sh_size);
  dynsym_names_offset_ = str.sh_offset;
  dynsym_names_size_ = str.sh_size;
  dynsym_offset_ = sh.sh_offset;
  dynsym_count_ = sh.sh_size / sizeof(Elf64_Sym);
  // .gnu.version, to skip hidden (non-default) versions when picking firstExportedSymbol().
  absl::string_view versions;
  for (const Elf64_Shdr& v : shdrs_) {
    if (v.sh_type == SHT_GNU_versym && v.sh_size >= dynsym_count_ * sizeof(uint16_t) &&
        checkRange(v.sh_offset, v.sh_size, ".gnu.version").ok()) {
      versions = bytes_.substr(v.sh_offset, v.sh_size);
    }
  }
  for (uint64_t i = 0; i < dynsym_count_; ++i) {
    const Elf64_Sym sym = readAt<Elf64_Sym>(bytes_, sh.sh_offset + i * sizeof(Elf64_Sym));
    if (ELF64_ST_BIND(sym.st_info) == STB_GNU_UNIQUE) ++unique_count_;
    // Symbols that can bind something; not the linker's NOTYPE markers (_end, _edata,
    // __bss_start) that even a library defining nothing has.
    const int type = ELF64_ST_TYPE(sym.st_info);
    if (sym.st_shndx != SHN_UNDEF && ELF64_ST_BIND(sym.st_info) != STB_LOCAL && sym.st_name != 0 &&
        (type == STT_FUNC || type == STT_OBJECT || type == STT_TLS || type == STT_GNU_IFUNC ||
         type == STT_COMMON)) {
      ++defined_count_;
    }
    if (first_exported_.empty() && sym.st_shndx != SHN_UNDEF && sym.st_shndx < SHN_LORESERVE &&
        sym.st_name != 0 && sym.st_name < names.size() && ELF64_ST_BIND(sym.st_info) == STB_GLOBAL &&
        ELF64_ST_VISIBILITY(sym.st_other) == STV_DEFAULT &&
        (ELF64_ST_TYPE(sym.st_info) == STT_FUNC || ELF64_ST_TYPE(sym.st_info) == STT_OBJECT) &&
        (versions.empty() || (readAt<uint16_t>(versions, i * sizeof(uint16_t)) & 0x8000) == 0)) {
      const size_t end = names.find('\0', sym.st_name);
      const absl::string_view name =
          end != absl::string_view::npos ? names.substr(sym.st_name, end - sym.st_name) : absl::string_view();
      // Not a symbol a sanitizer added (AddressSanitizer's "__odr_asan.NAME" indicators
      // come first in an instrumented library): the probe must be the library's own.
      if (!name.empty() && !absl::StartsWith(name, "__odr_asan") && !absl::StartsWith(name, "__asan_") &&
          !absl::StartsWith(name, "__ubsan_") && !absl::StartsWith(name, "__sanitizer_")) {
        first_exported_ = std::string(name);
      }
    }
    if (sym.st_shndx != SHN_UNDEF || sym.st_name == 0) continue;
    if (sym.st_name >= names.size()) {
      return error(absl::StrFormat(".dynsym symbol %d has name offset %d past its string table "
                                   "(size %d)",
                                   i, sym.st_name, names.size()));
    }
    if (first_undefined_python_.empty() && isPythonSymbolName(names, sym.st_name)) {
      const size_t end = names.find('\0', sym.st_name);
      first_undefined_python_ = std::string(names.substr(
          sym.st_name, end == absl::string_view::npos ? absl::string_view::npos
                                                      : end - sym.st_name));
    }
  }
  return absl::OkStatus();
}

}  // namespace pyfleet::internal
