// File: elf_file.h
//
// ElfFile is a validated, read-only view of one ELF64 little-endian x86-64 shared
// object (ET_DYN) held in memory: its ELF header, program headers, the PT_DYNAMIC
// entries, the dynamic string table, DT_NEEDED / DT_SONAME / DT_RUNPATH / DT_RPATH, and a
// summary of .dynsym. It is what loader/ uses to decide how to copy a library and to
// check every edit it makes (see elf_edit.h).
//
//   PYFLEET_ASSIGN_OR_RETURN(ElfFile elf, ElfFile::parse(bytes, "libtorch_python.so.1.13"));
//   // (an error is e.g. InvalidArgument "x.so: not an ELF file")
//   for (const std::string& dep : elf.needed()) { ... }
//   if (elf.hasUndefinedPythonSymbols()) { ... one private copy per interpreter ... }
//
// Every offset and size read from the file is bounds-checked before use; a malformed
// file gives an error naming the file and never reads outside `bytes`. Errors:
// InvalidArgument for a file that is not a well-formed shared object (not ELF, truncated,
// offsets past the end, no PT_DYNAMIC, a PT_LOAD beyond the x86-64 address space, ...),
// Unimplemented for a valid ELF this loader does not handle (32-bit, big-endian, another
// machine, extended phnum).
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pyfleet::internal {

// Copies a T out of `bytes` at `offset` (the caller has bounds-checked it). A file image
// has no alignment guarantee, so structures are never read through a cast pointer.
template <typename T>
T readAt(absl::string_view bytes, uint64_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

class ElfFile {
 public:
  // ElfFile::parse()
  //
  // Parses and validates `bytes`. `file_name` only appears in error messages. The
  // returned object refers to `bytes` (for bytes() and the string accessors), so `bytes`
  // must outlive it and stay unchanged.
  static absl::StatusOr<ElfFile> parse(absl::string_view bytes, std::string file_name);

  // ElfFile::parseDynamicOnly()
  //
  // Like parse(), but reads only the ELF header, the program headers and the dynamic
  // section with its strings (needed(), soname(), runpath(), rpath(), dynamicEntries()),
  // with the same checks and errors. verneeds(), the section headers and the .dynsym
  // summary are left empty, as for a file without section headers. For a cheap look at
  // a large library (no walk of its symbol table).
  static absl::StatusOr<ElfFile> parseDynamicOnly(absl::string_view bytes, std::string file_name);

  const std::string& fileName() const { return file_name_; }
  absl::string_view bytes() const { return bytes_; }
  const Elf64_Ehdr& header() const { return header_; }

  // All program headers, in file order.
  const std::vector<Elf64_Phdr>& programHeaders() const { return phdrs_; }
  // Index into programHeaders() of the PT_DYNAMIC entry.
  size_t dynamicPhdrIndex() const { return dynamic_phdr_index_; }
  // One past the highest address of any PT_LOAD (p_vaddr + p_memsz, so .bss included).
  uint64_t loadEnd() const { return load_end_; }

  // All section headers; empty when the file has none (e_shnum == 0).
  const std::vector<Elf64_Shdr>& sectionHeaders() const { return shdrs_; }
  // Indices into sectionHeaders() of .dynamic (SHT_DYNAMIC), the .dynstr that DT_STRTAB
  // names, and .dynsym (SHT_DYNSYM); -1 when absent.
  int dynamicSectionIndex() const { return dynamic_section_; }
  int dynstrSectionIndex() const { return dynstr_section_; }
  int dynsymSectionIndex() const { return dynsym_section_; }

  // The PT_DYNAMIC entries up to and including the first DT_NULL.
  const std::vector<Elf64_Dyn>& dynamicEntries() const { return dynamic_; }
  // The value of the first dynamic entry with `tag`; nullopt if there is none.
  std::optional<uint64_t> dynamicValue(int64_t tag) const;
  // File offset of the first dynamic entry.
  uint64_t dynamicOffset() const { return dynamic_offset_; }

  // The dynamic string table (DT_STRTAB/DT_STRSZ mapped through the PT_LOAD segments).
  uint64_t dynstrOffset() const { return dynstr_offset_; }
  absl::string_view dynstr() const { return bytes_.substr(dynstr_offset_, dynstr_size_); }

  // ElfFile::dynamicString()
  //
  // The NUL-terminated string at `offset` in the dynamic string table; InvalidArgument if
  // `offset` is outside the table or the string is not terminated inside it.
  absl::StatusOr<absl::string_view> dynamicString(uint64_t offset) const;

  // ElfFile::fileOffsetOf()
  //
  // The file offset holding the `size` bytes at virtual address `vaddr`; InvalidArgument
  // unless one PT_LOAD segment covers them with file bytes.
  absl::StatusOr<uint64_t> fileOffsetOf(uint64_t vaddr, uint64_t size) const;

  // One Elf64_Verneed entry of DT_VERNEED (symbol versions required from a library named
  // by vn_file, which glibc matches against the loaded dependencies by name).
  struct Verneed {
    uint64_t offset;   // file offset of the entry
    std::string file;  // its vn_file string
  };
  const std::vector<Verneed>& verneeds() const { return verneeds_; }

  // DT_NEEDED values in order; DT_SONAME, DT_RUNPATH and DT_RPATH if present.
  const std::vector<std::string>& needed() const { return needed_; }
  const std::optional<std::string>& soname() const { return soname_; }
  const std::optional<std::string>& runpath() const { return runpath_; }
  const std::optional<std::string>& rpath() const { return rpath_; }

  // .dynsym summary, found through the section headers (all zero / false when the file
  // has no SHT_DYNSYM section, e.g. when its section headers were stripped).
  uint64_t dynsymOffset() const { return dynsym_offset_; }
  uint64_t dynsymCount() const { return dynsym_count_; }
  // .dynsym entry `index` (< dynsymCount()).
  // The name of .dynsym entry `index` (< dynsymCount()), from the string table .dynsym
  // links to; "" for an empty or malformed name.
  std::string symbolName(uint64_t index) const;
  Elf64_Sym symbol(uint64_t index) const {
    return readAt<Elf64_Sym>(bytes_, dynsym_offset_ + index * sizeof(Elf64_Sym));
  }
  // Number of symbols with binding STB_GNU_UNIQUE. See Note [STB_GNU_UNIQUE demotion].
  int uniqueSymbolCount() const { return unique_count_; }
  // Whether some undefined symbol's name starts with "Py" or "_Py": the library needs a
  // CPython to bind to. One such name, for messages, in firstUndefinedPythonSymbol().
  bool hasUndefinedPythonSymbols() const { return !first_undefined_python_.empty(); }
  // The first defined GLOBAL function or object of default visibility in .dynsym ("" if
  // none): a name to ask the dynamic linker where this library's definitions are found.
  const std::string& firstExportedSymbol() const { return first_exported_; }
  // Number of defined, non-local functions, objects, TLS and IFUNC symbols in .dynsym (of
  // any binding): what the library can bind for others.
  uint64_t definedSymbolCount() const { return defined_count_; }
  const std::string& firstUndefinedPythonSymbol() const { return first_undefined_python_; }

 private:
  ElfFile() = default;
  absl::Status parseHeader();
  absl::Status parseProgramHeaders();
  absl::Status parseDynamic();
  absl::Status parseVerneed();
  absl::Status parseSections();
  absl::Status parseDynsym();
  absl::Status error(absl::string_view what) const;
  // OK iff [offset, offset + size) lies inside the file; `what` names the range.
  absl::Status checkRange(uint64_t offset, uint64_t size, absl::string_view what) const;

  absl::string_view bytes_;
  std::string file_name_;
  Elf64_Ehdr header_{};
  std::vector<Elf64_Phdr> phdrs_;
  std::vector<Elf64_Shdr> shdrs_;
  size_t dynamic_phdr_index_ = 0;
  uint64_t load_end_ = 0;
  std::vector<Elf64_Dyn> dynamic_;
  uint64_t dynamic_offset_ = 0;
  uint64_t dynstr_offset_ = 0;
  uint64_t dynstr_size_ = 0;
  int dynamic_section_ = -1;
  int dynstr_section_ = -1;
  int dynsym_section_ = -1;
  std::vector<std::string> needed_;
  std::vector<Verneed> verneeds_;
  std::optional<std::string> soname_;
  std::optional<std::string> runpath_;
  std::optional<std::string> rpath_;
  uint64_t dynsym_offset_ = 0;
  uint64_t dynsym_count_ = 0;
  uint64_t dynsym_names_offset_ = 0;  // the string table .dynsym links to
  uint64_t dynsym_names_size_ = 0;
  int unique_count_ = 0;
  std::string first_undefined_python_;
  std::string first_exported_;
  uint64_t defined_count_ = 0;
};

}  // namespace pyfleet::internal
