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
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pyfleet::internal::testing {

// Real libraries from Debian packages the project depends on (zlib1g, libtorch-dev /
// python3-torch, libpython3.11). A missing one fails the test that reads it.
inline constexpr const char kLibz[] = "/lib/x86_64-linux-gnu/libz.so.1";
inline constexpr const char kLibtorchPython[] = "/usr/lib/x86_64-linux-gnu/libtorch_python.so.1.13";
inline constexpr const char kJsonExtension[] = PYFLEET_TEST_JSON_EXTENSION;

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
