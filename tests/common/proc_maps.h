// File: proc_maps.h
//
// This process's memory mappings as /proc/self/maps and /proc/self/smaps list them: the
// one parser the C++ tests use to check where bytes live (a storage inside the mapping
// of its archive, a library copy's own file, huge-page advice on pymalloc's arenas).
// tests/fixtures/proc_maps.py is its Python counterpart.
//
//   std::optional<Mapping> m = mappingContaining(tensor.data_ptr());
//   EXPECT_EQ(m->path, packageCopyOf("model.pt"));          // a view of the archive, no copy
//   EXPECT_GT(bytesMappedFrom("model.pt"), 0u);
//   std::optional<Mapping> s = smapsMappingContaining(object_address);
//   EXPECT_TRUE(s->hasVmFlag("hg"));                        // madvise(MADV_HUGEPAGE)
//
// Every function reads the files afresh (mappings change under a running test); none
// keeps state, so they may be called from any thread.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace pyfleet::testing {

// One line of /proc/self/maps; with smaps, also the per-mapping fields.
struct Mapping {
  uintptr_t start = 0;  // [start, end)
  uintptr_t end = 0;
  std::string perms;    // "r-xp", "rw-p", "---p", "r--s"
  uint64_t offset = 0;  // offset into the file
  std::string device;   // "fd:01"
  uint64_t inode = 0;   // 0 for anonymous mappings
  std::string path;     // "" if anonymous; "[heap]"; a file, with " (deleted)" if unlinked
  // From /proc/self/smaps only (empty from /proc/self/maps):
  std::map<std::string, uint64_t> kb;  // "Rss", "AnonHugePages", ... in kB
  std::vector<std::string> vm_flags;   // "rd", "wr", "hg" (MADV_HUGEPAGE), ...

  uint64_t size() const { return end - start; }
  bool contains(const void* p) const {
    const auto a = reinterpret_cast<uintptr_t>(p);
    return a >= start && a < end;
  }
  bool deleted() const {
    static constexpr char kDeleted[] = " (deleted)";
    return path.size() >= sizeof(kDeleted) - 1 &&
           path.compare(path.size() - (sizeof(kDeleted) - 1), std::string::npos, kDeleted) == 0;
  }
  // The file path without a " (deleted)" suffix.
  std::string file() const { return deleted() ? path.substr(0, path.size() - 10) : path; }
  bool hasVmFlag(const std::string& flag) const {
    return std::find(vm_flags.begin(), vm_flags.end(), flag) != vm_flags.end();
  }
  // /proc/self/map_files/<start>-<end>: the mapped file itself, even when unlinked.
  std::string mapFilesPath() const {
    char name[64];
    std::snprintf(name, sizeof(name), "%lx-%lx", static_cast<unsigned long>(start),
                  static_cast<unsigned long>(end));
    return std::string("/proc/self/map_files/") + name;
  }
};

namespace proc_maps_internal {

// Parses a maps line ("start-end perms offset dev inode [path]") into `m`.
inline bool parseHeader(const std::string& line, Mapping& m) {
  std::istringstream in(line);
  std::string range;
  if (!(in >> range >> m.perms >> std::hex >> m.offset >> m.device >> std::dec >> m.inode)) return false;
  const size_t dash = range.find('-');
  if (dash == std::string::npos) return false;
  m.start = std::stoull(range.substr(0, dash), nullptr, 16);
  m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
  std::getline(in, m.path);
  m.path.erase(0, m.path.find_first_not_of(' '));
  return true;
}

inline std::vector<Mapping> read(const char* file, bool smaps) {
  std::vector<Mapping> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    const std::string key = line.substr(0, line.find(' '));
    if (smaps && !key.empty() && key.back() == ':') {  // a field of the last mapping
      if (out.empty()) continue;
      std::istringstream fields(line.substr(key.size()));
      if (key == "VmFlags:") {
        for (std::string flag; fields >> flag;) out.back().vm_flags.push_back(flag);
      } else if (uint64_t value = 0; fields >> value) {
        out.back().kb[key.substr(0, key.size() - 1)] = value;
      }
      continue;
    }
    Mapping m;
    if (parseHeader(line, m)) out.push_back(std::move(m));
  }
  return out;
}

inline std::string realPath(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) return path;
  std::string out = resolved;
  ::free(resolved);
  return out;
}

}  // namespace proc_maps_internal

// Every mapping of this process, in address order (/proc/self/maps); empty if unreadable.
inline std::vector<Mapping> readMappings() { return proc_maps_internal::read("/proc/self/maps", false); }

// The same from /proc/self/smaps, with each mapping's kB fields and VmFlags (slower: the
// kernel walks every page table to produce it).
inline std::vector<Mapping> readSmaps() { return proc_maps_internal::read("/proc/self/smaps", true); }

// The mapping of `mappings` that holds `p`, or nullopt.
inline std::optional<Mapping> mappingContaining(const std::vector<Mapping>& mappings, const void* p) {
  for (const Mapping& m : mappings) {
    if (m.contains(p)) return m;
  }
  return std::nullopt;
}

// The mapping that holds `p` now, or nullopt.
inline std::optional<Mapping> mappingContaining(const void* p) { return mappingContaining(readMappings(), p); }

// The mapping that holds `p` now, with its smaps fields, or nullopt.
inline std::optional<Mapping> smapsMappingContaining(const void* p) { return mappingContaining(readSmaps(), p); }

// The file mapped at `p` (a mapping's path: "" if anonymous or unmapped).
inline std::string mappedFileAt(const void* p) {
  std::optional<Mapping> m = mappingContaining(p);
  return m ? m->path : "";
}

// What /proc/self/maps calls the sealed in-memory copy of the package file `path` that
// a package archive maps instead of the file (Note [Package files may change on disk]
// in loader/base/mapped_file.h).
inline std::string packageCopyOf(const std::string& path) {
  return "/memfd:pyfleet-package:" + proc_maps_internal::realPath(path) + " (deleted)";
}

// The mappings of the file `path` (compared after realpath(3)), or of a package
// archive's copy of it (packageCopyOf), in address order.
inline std::vector<Mapping> mappingsOf(const std::string& path) {
  const std::string real = proc_maps_internal::realPath(path);
  const std::string copy = packageCopyOf(path);
  std::vector<Mapping> out;
  for (Mapping& m : readMappings()) {
    if (m.path == real || m.path == copy) out.push_back(std::move(m));
  }
  return out;
}

// Bytes of address space mapped from the file `path` (all its mappings together).
inline uint64_t bytesMappedFrom(const std::string& path) {
  uint64_t total = 0;
  for (const Mapping& m : mappingsOf(path)) total += m.size();
  return total;
}

}  // namespace pyfleet::testing
