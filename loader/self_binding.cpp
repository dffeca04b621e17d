#include "loader/self_binding.h"

#include <elf.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "loader/base/status_macros.h"

namespace pyfleet::internal {
namespace {

// A relocation table found through the dynamic section: its file offset and entry count.
struct RelaTable {
  uint64_t offset = 0;
  uint64_t count = 0;
};

absl::StatusOr<std::optional<RelaTable>> findTable(const ElfFile& elf, int64_t address_tag,
                                                   int64_t size_tag, absl::string_view what) {
  std::optional<uint64_t> address = elf.dynamicValue(address_tag);
  std::optional<uint64_t> size = elf.dynamicValue(size_tag);
  if (!address || !size || *size == 0) return std::nullopt;
  if (*size % sizeof(Elf64_Rela) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(elf.fileName(), ": ", what, " size ", *size, " is not a whole number of entries"));
  }
  PYFLEET_ASSIGN_OR_RETURN(uint64_t offset, elf.fileOffsetOf(*address, *size));
  return RelaTable{offset, *size / sizeof(Elf64_Rela)};
}

// Whether a reference to symbol `sym` (index `index`) is bound by glibc to the library's
// own definition whenever the global scope lacks the name (the Note's conditions, bar
// that last one).
bool selfDefinedCandidate(const ElfFile& elf, const Elf64_Sym& sym, uint64_t index,
                          std::optional<uint64_t> versym_offset) {
  if (sym.st_shndx == SHN_UNDEF || sym.st_shndx == SHN_ABS || sym.st_shndx == SHN_COMMON) return false;
  if (sym.st_value == 0) return false;  // glibc's check_match skips such definitions
  const int bind = ELF64_ST_BIND(sym.st_info);
  if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) return false;
  // With LD_DYNAMIC_WEAK glibc looks past a weak definition for a strong one.
  if (bind == STB_WEAK && ::getenv("LD_DYNAMIC_WEAK") != nullptr) return false;
  const int type = ELF64_ST_TYPE(sym.st_info);
  if (type == STT_GNU_IFUNC || type == STT_TLS) return false;
  if (ELF64_ST_VISIBILITY(sym.st_other) != STV_DEFAULT) return false;  // bound locally already
  if (versym_offset) {
    const uint16_t version = readAt<uint16_t>(elf.bytes(), *versym_offset + index * sizeof(uint16_t)) & 0x7fff;
    if (version != 1) return false;  // VER_NDX_GLOBAL only
  }
  return true;
}

}  // namespace

absl::StatusOr<SelfBindingCount> bindSelfReferences(
    const ElfFile& elf, std::string& image,
    absl::FunctionRef<bool(const char* name)> defined_in_global_scope) {
  SelfBindingCount count;
  const uint64_t symbols = elf.dynsymCount();
  if (symbols == 0 || image.size() != elf.bytes().size()) return count;
  if (std::optional<uint64_t> entry = elf.dynamicValue(DT_RELAENT); entry && *entry != sizeof(Elf64_Rela)) {
    return absl::InvalidArgumentError(absl::StrCat(elf.fileName(), ": DT_RELAENT is ", *entry));
  }
  std::optional<uint64_t> versym_offset;
  if (std::optional<uint64_t> versym = elf.dynamicValue(DT_VERSYM)) {
    PYFLEET_ASSIGN_OR_RETURN(versym_offset, elf.fileOffsetOf(*versym, symbols * sizeof(uint16_t)));
  }
  std::vector<RelaTable> tables;
  PYFLEET_ASSIGN_OR_RETURN(std::optional<RelaTable> dyn, findTable(elf, DT_RELA, DT_RELASZ, "DT_RELA"));
  if (dyn) tables.push_back(*dyn);
  if (elf.dynamicValue(DT_PLTREL) == std::optional<uint64_t>(DT_RELA)) {
    PYFLEET_ASSIGN_OR_RETURN(std::optional<RelaTable> plt,
                             findTable(elf, DT_JMPREL, DT_PLTRELSZ, "DT_JMPREL"));
    if (plt) tables.push_back(*plt);
  }

  // Per symbol: -1 not decided yet, 0 leave to ld.so, 1 bind to the library itself.
  std::vector<int8_t> verdict(symbols, -1);
  const absl::string_view bytes = elf.bytes();
  const absl::string_view strings = elf.dynstr();
  for (const RelaTable& table : tables) {
    for (uint64_t i = 0; i < table.count; ++i) {
      const uint64_t at = table.offset + i * sizeof(Elf64_Rela);
      Elf64_Rela rela = readAt<Elf64_Rela>(bytes, at);
      const uint32_t type = ELF64_R_TYPE(rela.r_info);
      if (type != R_X86_64_64 && type != R_X86_64_GLOB_DAT && type != R_X86_64_JUMP_SLOT) continue;
      const uint64_t index = ELF64_R_SYM(rela.r_info);
      if (index == 0 || index >= symbols) continue;
      ++count.examined;
      if (type != R_X86_64_64 && rela.r_addend != 0) continue;
      const Elf64_Sym sym = elf.symbol(index);
      if (verdict[index] < 0) {
        verdict[index] = 0;
        if (selfDefinedCandidate(elf, sym, index, versym_offset) && sym.st_name < strings.size()) {
          const absl::string_view rest = strings.substr(sym.st_name);
          const size_t end = rest.find('\0');
          if (end != absl::string_view::npos && end > 0) {
            const std::string name(rest.substr(0, end));
            verdict[index] = defined_in_global_scope(name.c_str()) ? 0 : 1;
          }
        }
      }
      if (verdict[index] != 1) continue;
      rela.r_addend = static_cast<Elf64_Sxword>(sym.st_value) + (type == R_X86_64_64 ? rela.r_addend : 0);
      rela.r_info = ELF64_R_INFO(0, R_X86_64_RELATIVE);
      std::memcpy(image.data() + at, &rela, sizeof(rela));
      ++count.rewritten;
    }
  }
  return count;
}

}  // namespace pyfleet::internal
