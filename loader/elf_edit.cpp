// Dynamic-section edits on ELF64 x86-64 shared objects; see elf_edit.h.
#include "loader/elf_edit.h"

#include <elf.h>

#include <algorithm>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "loader/elf_file.h"
#include "loader/base/status_macros.h"

namespace pyfleet::internal {
namespace {

// Alignment of the appended segment. x86-64 Linux runs with 4 KiB pages; glibc only
// requires p_offset == p_vaddr modulo the run-time page size.
constexpr uint64_t kPageSize = 4096;

uint64_t alignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

template <typename T>
void writeAt(std::string& image, uint64_t offset, const T& value) {
  std::memcpy(image.data() + offset, &value, sizeof(T));
}

// The strings an edit adds, each stored once, after the old table.
class StringAppender {
 public:
  explicit StringAppender(uint64_t old_size) : old_size_(old_size) {}
  // Offset in the new table of `s` (added on first use).
  uint64_t add(const std::string& s) {
    auto [it, inserted] = offsets_.try_emplace(s, old_size_ + appended_.size());
    if (inserted) {
      appended_ += s;
      appended_.push_back('\0');
    }
    return it->second;
  }
  const std::string& appended() const { return appended_; }

 private:
  uint64_t old_size_;
  std::string appended_;
  absl::flat_hash_map<std::string, uint64_t> offsets_;
};

// Indices of the undefined .dynsym symbols named `name`.
std::vector<uint64_t> undefinedSymbolsNamed(const ElfFile& elf, const std::string& name) {
  std::vector<uint64_t> out;
  for (uint64_t i = 0; i < elf.dynsymCount(); ++i) {
    if (elf.symbol(i).st_shndx == SHN_UNDEF && elf.symbolName(i) == name) out.push_back(i);
  }
  return out;
}

absl::Status checkEdits(const ElfFile& elf, const ElfEdits& edits) {
  auto bad = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  for (const std::string& s : edits.add_needed) {
    if (bad(s)) return absl::InvalidArgumentError("a DT_NEEDED value contains NUL");
  }
  for (const auto& [from, to] : edits.replace_needed) {
    if (bad(to)) return absl::InvalidArgumentError("a DT_NEEDED value contains NUL");
    if (std::find(elf.needed().begin(), elf.needed().end(), from) == elf.needed().end()) {
      return absl::NotFoundError(absl::StrCat(elf.fileName(), ": has no DT_NEEDED \"", from,
                                              "\" to replace (has: ",
                                              absl::StrJoin(elf.needed(), ", "), ")"));
    }
  }
  for (const std::string& name : edits.remove_needed) {
    if (std::find(elf.needed().begin(), elf.needed().end(), name) == elf.needed().end()) {
      return absl::NotFoundError(absl::StrCat(elf.fileName(), ": has no DT_NEEDED \"", name,
                                              "\" to remove (has: ",
                                              absl::StrJoin(elf.needed(), ", "), ")"));
    }
  }
  if ((edits.soname && bad(*edits.soname)) || (edits.runpath && bad(*edits.runpath))) {
    return absl::InvalidArgumentError("a DT_SONAME or DT_RUNPATH value contains NUL");
  }
  for (const auto& [from, to] : edits.rename_undefined) {
    if (bad(from) || bad(to) || to.empty()) {
      return absl::InvalidArgumentError("a renamed symbol is empty or contains NUL");
    }
    if (undefinedSymbolsNamed(elf, from).empty()) {
      return absl::NotFoundError(absl::StrCat(elf.fileName(), ": has no undefined symbol \"", from, "\" to rename"));
    }
  }
  if (edits.demote_unique && elf.dynsymSectionIndex() < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        elf.fileName(), ": cannot demote STB_GNU_UNIQUE symbols without a .dynsym section"));
  }
  return absl::OkStatus();
}

int demoteUnique(const ElfFile& elf, std::string& image) {
  int demoted = 0;
  for (uint64_t i = 0; i < elf.dynsymCount(); ++i) {
    const uint64_t info_offset = elf.dynsymOffset() + i * sizeof(Elf64_Sym) +
                                 offsetof(Elf64_Sym, st_info);
    const unsigned char info = static_cast<unsigned char>(image[info_offset]);
    if (ELF64_ST_BIND(info) != STB_GNU_UNIQUE) continue;
    image[info_offset] = static_cast<char>(ELF64_ST_INFO(STB_GLOBAL, ELF64_ST_TYPE(info)));
    ++demoted;
  }
  return demoted;
}

// The old dynamic string table that the new one starts with: DT_STRSZ bytes, or the
// .dynstr section's if that is longer. .dynsym names (and version names) are offsets into
// the section; glibc does not bound them by DT_STRSZ. Copying only DT_STRSZ bytes and
// re-pointing the section at the copy cut such names off: the result did not parse back
// (ElfEditTest.KeepsSymbolNamesPastStrsz, found by tests/fuzz/elf_edit_fuzzer).
absl::string_view oldStringTable(const ElfFile& elf) {
  const absl::string_view by_dynamic = elf.dynstr();
  if (elf.dynstrSectionIndex() < 0) return by_dynamic;
  const Elf64_Shdr& sh = elf.sectionHeaders()[elf.dynstrSectionIndex()];  // at dynstrOffset()
  if (sh.sh_size <= by_dynamic.size() || sh.sh_offset > elf.bytes().size() ||
      sh.sh_size > elf.bytes().size() - sh.sh_offset) {
    return by_dynamic;
  }
  return elf.bytes().substr(sh.sh_offset, sh.sh_size);
}

// An edit writes a few parts of the old file in place: a relayout the ELF header, the
// .dynamic and .dynstr section headers and the vn_file of version needs on replaced
// libraries; demote_unique (done first) .dynsym. Parsing the result then reads other parts
// in place: the headers, the old dynamic section (without a relayout), the version needs.
// In a crafted file these can overlap (a section header table at offset 8, say, or a
// version need whose vn_file is another one's vn_next), and one write would undo another
// or change what the parse reads: the result would not parse back. Such a file is refused
// up front. A write may overlap only what it belongs to (a section header its table, a
// vn_file its own version need). (tests/fuzz/elf_edit_fuzzer)
absl::Status checkRewritesDisjoint(const ElfFile& elf, const ElfEdits& edits, bool relayout,
                                   absl::string_view file_name) {
  // What a range belongs to: one of these, or the index of its version need (>= 0).
  enum Owner : int64_t {
    kHeader = -1,
    kProgramHeaders = -2,
    kSectionHeaders = -3,
    kDynamic = -4,
    kDynsym = -5,
  };
  struct Range {
    uint64_t begin, end;
    const char* what;
    int64_t owner;
  };
  const Elf64_Ehdr& header = elf.header();
  std::vector<Range> reads = {
      {0, sizeof(Elf64_Ehdr), "the ELF header", kHeader},
      {header.e_phoff, header.e_phoff + uint64_t{header.e_phnum} * sizeof(Elf64_Phdr),
       "the program headers", kProgramHeaders},
      {elf.dynamicOffset(), elf.dynamicOffset() + (elf.dynamicEntries().size() + 1) * sizeof(Elf64_Dyn),
       "the dynamic section", kDynamic}};
  if (header.e_shnum > 0) {
    reads.push_back({header.e_shoff, header.e_shoff + uint64_t{header.e_shnum} * sizeof(Elf64_Shdr),
                     "the section headers", kSectionHeaders});
  }
  std::vector<Range> writes;
  if (relayout) writes.push_back({0, sizeof(Elf64_Ehdr), "the ELF header", kHeader});
  for (int index : {elf.dynamicSectionIndex(), elf.dynstrSectionIndex()}) {
    if (!relayout || index < 0) continue;
    const uint64_t at = header.e_shoff + static_cast<uint64_t>(index) * sizeof(Elf64_Shdr);
    writes.push_back({at, at + sizeof(Elf64_Shdr), "a section header", kSectionHeaders});
  }
  for (size_t v = 0; v < elf.verneeds().size(); ++v) {
    const ElfFile::Verneed& verneed = elf.verneeds()[v];
    const auto owner = static_cast<int64_t>(v);
    reads.push_back({verneed.offset, verneed.offset + sizeof(Elf64_Verneed), "a version need", owner});
    for (const auto& [from, to] : edits.replace_needed) {
      if (!relayout || verneed.file != from) continue;
      const uint64_t at = verneed.offset + offsetof(Elf64_Verneed, vn_file);
      writes.push_back({at, at + sizeof(Elf64_Word), "a version need's vn_file", owner});
      break;
    }
  }
  if (edits.demote_unique || !edits.rename_undefined.empty()) {
    writes.push_back({elf.dynsymOffset(), elf.dynsymOffset() + elf.dynsymCount() * sizeof(Elf64_Sym),
                      ".dynsym", kDynsym});
  }
  auto overlap = [&](const Range& a, const Range& b) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": cannot edit: ", a.what, " at offset ",
                                                   a.begin, " overlaps ", b.what, " at offset ", b.begin));
  };
  for (size_t i = 0; i < writes.size(); ++i) {
    for (size_t j = i + 1; j < writes.size(); ++j) {
      if (writes[i].begin < writes[j].end && writes[j].begin < writes[i].end) return overlap(writes[i], writes[j]);
    }
  }
  for (const Range& w : writes) {
    for (const Range& r : reads) {
      if (w.owner != r.owner && w.begin < r.end && r.begin < w.end) return overlap(w, r);
    }
  }
  return absl::OkStatus();
}

// The new dynamic entries: old ones with values re-pointed into `strings`, the new
// DT_NEEDED entries before the first old one, DT_STRTAB/DT_STRSZ set by the caller.
std::vector<Elf64_Dyn> buildDynamic(const ElfFile& elf, const ElfEdits& edits,
                                    StringAppender& strings) {
  std::vector<Elf64_Dyn> added;
  for (const std::string& name : edits.add_needed) {
    added.push_back(Elf64_Dyn{DT_NEEDED, {strings.add(name)}});
  }
  std::vector<Elf64_Dyn> out;
  bool inserted = false, have_soname = false, have_path = false;
  for (Elf64_Dyn d : elf.dynamicEntries()) {
    if (d.d_tag == DT_NULL) break;
    if (d.d_tag == DT_NEEDED && !inserted) {
      out.insert(out.end(), added.begin(), added.end());
      inserted = true;
    }
    if (d.d_tag == DT_NEEDED) {
      // Offsets were validated by ElfFile::parse.
      const absl::string_view value = elf.dynamicString(d.d_un.d_val).value();
      if (std::find(edits.remove_needed.begin(), edits.remove_needed.end(), value) !=
          edits.remove_needed.end()) {
        continue;
      }
      for (const auto& [from, to] : edits.replace_needed) {
        if (value == from) d.d_un.d_val = strings.add(to);
      }
    } else if (d.d_tag == DT_SONAME) {
      have_soname = true;
      if (edits.soname) d.d_un.d_val = strings.add(*edits.soname);
    } else if (d.d_tag == DT_RUNPATH || d.d_tag == DT_RPATH) {
      have_path = true;
      if (edits.runpath) d.d_un.d_val = strings.add(*edits.runpath);
    }
    out.push_back(d);
  }
  if (!inserted) out.insert(out.begin(), added.begin(), added.end());
  if (edits.soname && !have_soname) out.push_back(Elf64_Dyn{DT_SONAME, {strings.add(*edits.soname)}});
  if (edits.runpath && !have_path) {
    out.push_back(Elf64_Dyn{DT_RUNPATH, {strings.add(*edits.runpath)}});
  }
  out.push_back(Elf64_Dyn{DT_NULL, {0}});
  return out;
}

// What the edited file must look like when parsed back.
// `before` may no longer view valid bytes: only its owned members are used, and the old
// string table comes as `old_dynstr`.
absl::Status verify(const ElfFile& before, absl::string_view old_dynstr, const ElfEdits& edits,
                    const ElfFile& after) {
  std::vector<std::string> needed = edits.add_needed;
  for (std::string name : before.needed()) {
    if (std::find(edits.remove_needed.begin(), edits.remove_needed.end(), name) !=
        edits.remove_needed.end()) {
      continue;
    }
    for (const auto& [from, to] : edits.replace_needed) {
      if (name == from) name = to;
    }
    needed.push_back(std::move(name));
  }
  auto mismatch = [&](absl::string_view what) {
    return absl::InternalError(
        absl::StrCat(before.fileName(), ": edited image does not check: ", what));
  };
  if (after.needed() != needed) return mismatch("DT_NEEDED list");
  for (const ElfFile::Verneed& verneed : after.verneeds()) {
    for (const auto& [from, to] : edits.replace_needed) {
      if (verneed.file == from) return mismatch("DT_VERNEED still names a replaced library");
    }
  }
  if (after.soname() != (edits.soname ? edits.soname : before.soname())) {
    return mismatch("DT_SONAME");
  }
  if (edits.runpath && after.runpath() != edits.runpath && after.rpath() != edits.runpath) {
    return mismatch("DT_RUNPATH");
  }
  if (after.dynstr().substr(0, old_dynstr.size()) != old_dynstr) {
    return mismatch("old dynamic strings moved");
  }
  if (edits.demote_unique && after.uniqueSymbolCount() != 0) {
    return mismatch("STB_GNU_UNIQUE symbols left");
  }
  for (const auto& [from, to] : edits.rename_undefined) {
    if (!undefinedSymbolsNamed(after, from).empty()) return mismatch("a renamed symbol keeps its old name");
    if (undefinedSymbolsNamed(after, to).empty()) return mismatch("a renamed symbol lacks its new name");
  }
  return absl::OkStatus();
}

// Appends the new segment and re-points everything at it. See Note [ELF relayout for new
// dynamic strings]. `before` views `image` only until the resize below; after it only its
// owned members are used, and its string table comes as `old_dynstr`.
void relayout(const ElfFile& before, const std::string& old_dynstr, const ElfEdits& edits,
              std::string& image, EditedImage& out) {
  StringAppender strings(old_dynstr.size());
  std::vector<Elf64_Dyn> dynamic = buildDynamic(before, edits, strings);
  // {file offset of vn_file, new value} for version requirements on replaced libraries.
  std::vector<std::pair<uint64_t, Elf64_Word>> verneed_files;
  for (const ElfFile::Verneed& verneed : before.verneeds()) {
    for (const auto& [from, to] : edits.replace_needed) {
      if (verneed.file != from) continue;
      verneed_files.emplace_back(verneed.offset + offsetof(Elf64_Verneed, vn_file),
                                 static_cast<Elf64_Word>(strings.add(to)));
    }
  }
  // {file offset of st_name, new value} for renamed undefined symbols.
  std::vector<std::pair<uint64_t, Elf64_Word>> renamed_symbols;
  for (const auto& [from, to] : edits.rename_undefined) {
    for (uint64_t i : undefinedSymbolsNamed(before, from)) {
      renamed_symbols.emplace_back(before.dynsymOffset() + i * sizeof(Elf64_Sym) + offsetof(Elf64_Sym, st_name),
                                   static_cast<Elf64_Word>(strings.add(to)));
    }
  }
  const uint64_t dynstr_size = old_dynstr.size() + strings.appended().size();

  // Layout of the new segment: program headers, .dynamic (8-aligned), .dynstr.
  std::vector<Elf64_Phdr> phdrs = before.programHeaders();
  const uint64_t phdr_bytes = (phdrs.size() + 1) * sizeof(Elf64_Phdr);
  const uint64_t dynamic_rel = alignUp(phdr_bytes, 8);
  const uint64_t dynamic_bytes = dynamic.size() * sizeof(Elf64_Dyn);
  const uint64_t dynstr_rel = dynamic_rel + dynamic_bytes;
  const uint64_t segment_bytes = dynstr_rel + dynstr_size;
  const uint64_t base_offset = alignUp(image.size(), kPageSize);
  const uint64_t base_vaddr = alignUp(before.loadEnd(), kPageSize);

  for (Elf64_Dyn& d : dynamic) {
    if (d.d_tag == DT_STRTAB) d.d_un.d_ptr = base_vaddr + dynstr_rel;
    if (d.d_tag == DT_STRSZ) d.d_un.d_val = dynstr_size;
  }
  for (Elf64_Phdr& ph : phdrs) {
    if (ph.p_type == PT_DYNAMIC) {
      ph.p_offset = base_offset + dynamic_rel;
      ph.p_vaddr = ph.p_paddr = base_vaddr + dynamic_rel;
      ph.p_filesz = ph.p_memsz = dynamic_bytes;
    } else if (ph.p_type == PT_PHDR) {
      ph.p_offset = base_offset;
      ph.p_vaddr = ph.p_paddr = base_vaddr;
      ph.p_filesz = ph.p_memsz = phdr_bytes;
    }
  }
  // PT_LOAD entries must stay sorted by address: the new one goes after the last.
  size_t insert_at = phdrs.size();
  for (size_t i = 0; i < phdrs.size(); ++i) {
    if (phdrs[i].p_type == PT_LOAD) insert_at = i + 1;
  }
  Elf64_Phdr load{};
  load.p_type = PT_LOAD;
  load.p_flags = PF_R | PF_W;
  load.p_offset = base_offset;
  load.p_vaddr = load.p_paddr = base_vaddr;
  load.p_filesz = load.p_memsz = segment_bytes;
  load.p_align = kPageSize;
  phdrs.insert(phdrs.begin() + insert_at, load);

  image.resize(base_offset + segment_bytes, '\0');
  std::memcpy(image.data() + base_offset, phdrs.data(), phdr_bytes);
  std::memcpy(image.data() + base_offset + dynamic_rel, dynamic.data(), dynamic_bytes);
  std::memcpy(image.data() + base_offset + dynstr_rel, old_dynstr.data(), old_dynstr.size());
  out.new_strings_offset = base_offset + dynstr_rel + old_dynstr.size();
  out.new_strings_size = strings.appended().size();
  std::memcpy(image.data() + out.new_strings_offset, strings.appended().data(),
              strings.appended().size());
  for (const auto& [offset, vn_file] : verneed_files) writeAt(image, offset, vn_file);
  for (const auto& [offset, st_name] : renamed_symbols) writeAt(image, offset, st_name);

  Elf64_Ehdr header = before.header();
  header.e_phoff = base_offset;
  header.e_phnum = static_cast<Elf64_Half>(phdrs.size());
  writeAt(image, 0, header);
  // Keep the section view consistent for readelf and for ElfFile.
  auto repoint = [&](int index, uint64_t rel, uint64_t size) {
    if (index < 0) return;
    Elf64_Shdr sh = before.sectionHeaders()[index];
    sh.sh_offset = base_offset + rel;
    sh.sh_addr = base_vaddr + rel;
    sh.sh_size = size;
    writeAt(image, header.e_shoff + index * sizeof(Elf64_Shdr), sh);
  };
  repoint(before.dynamicSectionIndex(), dynamic_rel, dynamic_bytes);
  repoint(before.dynstrSectionIndex(), dynstr_rel, dynstr_size);
}

}  // namespace

absl::StatusOr<EditedImage> editElf(std::string image, absl::string_view file_name,
                                    const ElfEdits& edits) {
  PYFLEET_ASSIGN_OR_RETURN(ElfFile before, ElfFile::parse(image, std::string(file_name)));
  PYFLEET_RETURN_IF_ERROR(checkEdits(before, edits));
  // `before` views `image`, which may be reallocated below; keep what is read afterwards.
  const std::string old_dynstr(oldStringTable(before));

  const bool needs_relayout = !edits.add_needed.empty() || !edits.replace_needed.empty() ||
                              !edits.remove_needed.empty() || !edits.rename_undefined.empty() ||
                              edits.soname.has_value() || edits.runpath.has_value();
  if (needs_relayout && before.header().e_phnum >= PN_XNUM - 1) {
    return absl::UnimplementedError(absl::StrCat(
        file_name, ": no room for one more program header (e_phnum=", before.header().e_phnum, ")"));
  }
  PYFLEET_RETURN_IF_ERROR(checkRewritesDisjoint(before, edits, needs_relayout, file_name));
  EditedImage out;
  if (edits.demote_unique) out.demoted = demoteUnique(before, image);
  if (needs_relayout) relayout(before, old_dynstr, edits, image, out);

  PYFLEET_ASSIGN_OR_RETURN(ElfFile after, ElfFile::parse(image, std::string(file_name)));
  // Without a relayout DT_STRSZ is unchanged: check the bytes it covers.
  PYFLEET_RETURN_IF_ERROR(verify(
      before, needs_relayout ? old_dynstr : old_dynstr.substr(0, before.dynstr().size()), edits,
      after));
  out.image = std::move(image);
  return out;
}

std::optional<std::string> dynamicWithoutSoname(const ElfFile& elf) {
  const std::vector<Elf64_Dyn>& entries = elf.dynamicEntries();  // up to the first DT_NULL
  std::string out;
  out.reserve(entries.size() * sizeof(Elf64_Dyn));
  for (const Elf64_Dyn& d : entries) {
    if (d.d_tag != DT_SONAME) out.append(reinterpret_cast<const char*>(&d), sizeof(d));
  }
  if (out.size() == entries.size() * sizeof(Elf64_Dyn)) return std::nullopt;
  const Elf64_Dyn null{DT_NULL, {0}};
  while (out.size() < entries.size() * sizeof(Elf64_Dyn)) {
    out.append(reinterpret_cast<const char*>(&null), sizeof(null));
  }
  return out;
}

absl::Status overwriteBytes(std::string& image, absl::Span<const uint64_t> offsets,
                            absl::string_view value) {
  for (uint64_t offset : offsets) {
    if (offset > image.size() || value.size() > image.size() - offset) {
      return absl::OutOfRangeError(absl::StrFormat(
          "overwrite of %d bytes at offset %d passes the end of a %d-byte image", value.size(),
          offset, image.size()));
    }
  }
  for (uint64_t offset : offsets) std::memcpy(image.data() + offset, value.data(), value.size());
  return absl::OkStatus();
}

}  // namespace pyfleet::internal
