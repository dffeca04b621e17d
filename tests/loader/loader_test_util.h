// File: loader_test_util.h
//
// Shared helpers for tests/loader: paths of the real Debian libraries the tests use,
// small byte-level helpers for building malformed inputs, and file-system helpers.
//
//   std::string bytes = readTestFile(kLibz);
//   putAt(bytes, 0, header);  // overwrite a struct in an image
#pragma once

#include <dirent.h>
#include <dlfcn.h>
#include <ftw.h>
#include <link.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/common/proc_maps.h"
#include "pyfleet/platform.h"

namespace pyfleet::internal::testing {

// Real libraries from Debian packages the project depends on (zlib1g, libtorch-dev /
// python3-torch, libpython3.X). A missing one fails the test that reads it.
inline constexpr const char kLibz[] = "/lib/x86_64-linux-gnu/libz.so.1";
inline constexpr const char kLibtorchPython[] = "/usr/lib/x86_64-linux-gnu/libtorch_python.so." PYFLEET_TORCH_SOVERSION;
inline constexpr const char kStdlibExtension[] = PYFLEET_TEST_STDLIB_EXTENSION;
// Its STB_GNU_UNIQUE symbols (`readelf --dyn-syms -W FILE | grep -c UNIQUE`): 58 in
// Debian 12's 1.13.1, 130 in Debian 13's 2.6.0.
inline const int kLibtorchPythonUniqueSymbols = std::string(PYFLEET_TORCH_SOVERSION) == "1.13" ? 58 : 130;

// Writes `bytes` to `path` (a fatal test failure if it cannot).
inline void writeFile(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  std::fclose(f);
}

// The whole file, or "" after recording a test failure.
inline std::string readTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return "";
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Overwrites sizeof(T) bytes of `image` at `offset` with `value`.
template <typename T>
void putAt(std::string& image, uint64_t offset, const T& value) {
  ASSERT_LE(offset + sizeof(T), image.size());
  std::memcpy(image.data() + offset, &value, sizeof(T));
}

template <typename T>
T getAt(const std::string& image, uint64_t offset) {
  T value{};
  if (offset + sizeof(T) <= image.size()) std::memcpy(&value, image.data() + offset, sizeof(T));
  return value;
}

// The DT_NEEDED names of a loaded object, read from its dynamic section in memory
// (glibc has relocated DT_STRTAB to an address).
inline std::vector<std::string> neededOf(void* handle) {
  struct link_map* map = nullptr;
  std::vector<std::string> out;
  if (::dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) return out;
  const char* strings = nullptr;
  for (const ElfW(Dyn)* d = map->l_ld; d->d_tag != DT_NULL; ++d) {
    if (d->d_tag == DT_STRTAB) strings = reinterpret_cast<const char*>(d->d_un.d_ptr);
  }
  if (strings == nullptr) return out;
  for (const ElfW(Dyn)* d = map->l_ld; d->d_tag != DT_NULL; ++d) {
    if (d->d_tag == DT_NEEDED) out.emplace_back(strings + d->d_un.d_val);
  }
  return out;
}

// The DT_SONAME of a loaded object as it is in memory (what glibc matches DT_NEEDED
// names against); nullopt if it has none.
inline std::optional<std::string> sonameOf(void* handle) {
  struct link_map* map = nullptr;
  if (::dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) return std::nullopt;
  const char* strings = nullptr;
  for (const ElfW(Dyn)* d = map->l_ld; d->d_tag != DT_NULL; ++d) {
    if (d->d_tag == DT_STRTAB) strings = reinterpret_cast<const char*>(d->d_un.d_ptr);
  }
  for (const ElfW(Dyn)* d = map->l_ld; strings != nullptr && d->d_tag != DT_NULL; ++d) {
    if (d->d_tag == DT_SONAME) return std::string(strings + d->d_un.d_val);
  }
  return std::nullopt;
}

// realpath(3) of `path`, or "" if it does not resolve.
inline std::string realPath(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) return "";
  std::string out = resolved;
  ::free(resolved);
  return out;
}

// The file of the loaded object that holds `address` (dladdr's dli_fname), or "".
inline std::string objectFileOf(const void* address) {
  Dl_info info;
  if (::dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}

// Bytes allocated to the (deleted) copy file that the mapping holding `address` maps;
// UINT64_MAX if no mapping holds it.
inline uint64_t allocatedBytesOfFileAt(const void* address) {
  const std::optional<::pyfleet::testing::Mapping> m = ::pyfleet::testing::mappingContaining(address);
  struct stat st {};
  if (!m || ::stat(m->mapFilesPath().c_str(), &st) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

// The dynamic section of the object `handle` names, which lies in its own (copy) file.
inline const void* dynamicSectionOf(void* handle) {
  struct link_map* map = nullptr;
  return ::dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr ? map->l_ld : nullptr;
}

// dlsym that fails the test (and returns null) when the symbol is missing.
inline void* symbolOrFail(void* handle, const char* name) {
  void* sym = ::dlsym(handle, name);
  if (sym == nullptr) ADD_FAILURE() << "dlsym(" << name << "): " << ::dlerror();
  return sym;
}

// The names in directory `dir` (not "." and ".."), in readdir order; empty if it
// cannot be opened.
inline std::vector<std::string> listDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  return names;
}

// A private scratch directory for files a test writes itself (the loader's workspace
// exists only during its own loads). Removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = ::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/pyfleet-test-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    if (!path_.empty()) {
      ::nftw(path_.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
             FTW_DEPTH | FTW_PHYS);
    }
  }
  const std::string& path() const { return path_; }
  std::string pathOf(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace pyfleet::internal::testing
