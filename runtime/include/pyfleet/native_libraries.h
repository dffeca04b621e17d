// File: native_libraries.h
//
// pyfleet::NativeLibraries: the process-wide machinery interpreters share: the
// interpreter library, a private workspace for per-interpreter library copies, and the
// patched-once templates of every native library (ARCHITECTURE.md §7). Create one and
// pass it to every Interpreter; it lives as long as any of them.
//
//   auto libs = pyfleet::NativeLibraries::create();
//   auto a = pyfleet::Interpreter::create(libs);
//   auto b = pyfleet::Interpreter::create(libs);   // reuses a's templates
//   libs->stats().copies_loaded;
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "pyfleet/export.h"

namespace pyfleet {

namespace internal {
class LibraryLoader;
struct Access;
}  // namespace internal

class PYFLEET_API NativeLibraries {
 public:
  // NativeLibraries::create()
  //
  // `interpreter_library` "" means libpyfleet_interpreter.so next to libpyfleet.so,
  // or $PYFLEET_INTERPRETER_LIBRARY if set. Throws pyfleet::Error.
  static std::shared_ptr<NativeLibraries> create(std::string interpreter_library = "");
  ~NativeLibraries();
  NativeLibraries(const NativeLibraries&) = delete;
  NativeLibraries& operator=(const NativeLibraries&) = delete;

  const std::string& interpreterLibrary() const { return interpreter_library_; }

  // Seconds spent patching templates and instantiating copies, and how many.
  struct Stats {
    int templates_built = 0;
    double template_seconds = 0;
    int copies_loaded = 0;
    double copy_seconds = 0;
    // Bytes of library copies' code and read-only data backed by the original files'
    // shared pages instead of private ones.
    uint64_t shared_bytes = 0;
    // Symbol relocations of library copies resolved once per process instead of looked
    // up by the dynamic linker in every copy.
    int self_bound_relocations = 0;
  };
  Stats stats() const;

 private:
  friend struct internal::Access;
  NativeLibraries() = default;
  std::string interpreter_library_;
  std::unique_ptr<internal::LibraryLoader> loader_;
  std::atomic<int> next_index_{0};
};

}  // namespace pyfleet
