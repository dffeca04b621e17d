// File: native_libraries.cpp
//
// NativeLibraries: finds the interpreter library and owns the LibraryLoader
// (workspace + templates) that every interpreter of this process shares.
#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "loader/library_loader.h"
#include "pyfleet/error.h"
#include "pyfleet/interpreter.h"
#include "pyfleet/native_libraries.h"

namespace pyfleet {
namespace {

// libpyfleet_interpreter.so in the directory of the library holding this code.
std::string DefaultInterpreterLibrary() {
  if (const char* env = std::getenv("PYFLEET_INTERPRETER_LIBRARY"); env != nullptr && *env != '\0') {
    return env;
  }
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&DefaultInterpreterLibrary), &info) == 0 || info.dli_fname == nullptr) {
    return "libpyfleet_interpreter.so";
  }
  std::string self = info.dli_fname;
  size_t slash = self.rfind('/');
  return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/libpyfleet_interpreter.so";
}

}  // namespace

std::vector<std::string> DefaultSysPath() {
  return {PYFLEET_DEFAULT_SYS_PATH};  // compile definition: Debian python3's paths
}

std::shared_ptr<NativeLibraries> NativeLibraries::create(std::string interpreter_library) {
  std::shared_ptr<NativeLibraries> libs(new NativeLibraries());
  libs->interpreter_library_ =
      interpreter_library.empty() ? DefaultInterpreterLibrary() : std::move(interpreter_library);
  auto loader = internal::LibraryLoader::Create();
  ThrowIfError(loader.status());
  libs->loader_ = std::move(loader).value();
  return libs;
}

NativeLibraries::~NativeLibraries() = default;

NativeLibraries::Stats NativeLibraries::stats() const {
  internal::LibraryLoader::Stats s = loader_->stats();
  return Stats{s.templates_built, s.template_seconds, s.copies_loaded, s.copy_seconds, s.shared_bytes,
               s.self_bound_relocations};
}

}  // namespace pyfleet
