// File: library_resolver.h
//
// LibraryResolver answers, as ld.so would, which file a DT_NEEDED name resolves to, and
// what LibraryLoader needs to know about that file: whether it depends on Python
// (undefined Py*/_Py* symbols, so it needs one private copy per interpreter) and how to
// find out whether it is already in the process's global scope (global_scope.h). Results
// are cached per canonical path for the life of the resolver (one per LibraryLoader).
//
//   LibraryResolver resolver;
//   PYFLEET_ASSIGN_OR_RETURN(std::optional<ResolvedLibrary> lib,
//                            resolver.resolveNeeded("libz.so.1", searchDirs(elf, dirName(path))));
//   if (!lib) { ... not found: left to ld.so ... }
//   else if (lib->info.python_dependent) { ... one private copy per interpreter ... }
//
// Note [Resolving DT_NEEDED like ld.so]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Finding the libraries an extension needs (to tell which depend on Python) follows
// ld.so in simplified form: a name with '/' is a path; otherwise DT_RPATH (only when
// there is no DT_RUNPATH), then DT_RUNPATH, both with $ORIGIN/${ORIGIN} expanded, then
// /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib, /usr/lib. Not modelled:
// LD_LIBRARY_PATH, /etc/ld.so.cache, $LIB/$PLATFORM, the needing object's parents'
// RPATH, objects already loaded by soname. The first candidate that parses as an x86-64
// ELF shared object wins (ld.so also skips files of the wrong kind); $ORIGIN is the
// directory of the library's canonical path. A name not found this way is left for ld.so
// to resolve as usual. Python-dependent libraries needed only through a non-Python
// library are not found (they would fail to bind at dlopen).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "loader/base/mapped_file.h"
#include "loader/elf_file.h"

namespace pyfleet::internal {

// What the loader needs to know about one library file.
struct LibraryInfo {
  // Some undefined symbol is named Py*/_Py* (ElfFile::hasUndefinedPythonSymbols()).
  bool python_dependent = false;
  // ElfFile::firstExportedSymbol(), to find whether the library is in the global scope
  // (loadedInGlobalScope(), global_scope.h); "" if it exports none.
  std::string exported_symbol;
  // Any defined non-local dynamic symbol at all (ElfFile::definedSymbolCount() > 0).
  bool defines_symbols = false;
  // Only for a library that exports nothing: its DT_NEEDED names and the directories
  // they are looked up in (searchDirs()), to check what it pulls in instead.
  std::vector<std::string> needed;
  std::vector<std::string> search_dirs;
};

// A DT_NEEDED name resolved to a file.
struct ResolvedLibrary {
  std::string path;  // canonical
  LibraryInfo info;
};

// Thread-safe. Its mutex is a leaf: held only for cache look-ups, never while parsing.
class LibraryResolver {
 public:
  LibraryResolver() = default;
  LibraryResolver(const LibraryResolver&) = delete;
  LibraryResolver& operator=(const LibraryResolver&) = delete;

  // LibraryResolver::readLibraryInfo()
  //
  // Parses the library at `path` (uncached). Errors: NotFound (or another errno code)
  // naming `path` if it cannot be opened; InvalidArgument for an empty file or one that
  // is not a well-formed ELF shared object ("<path>: not an ELF file", ...);
  // Unimplemented for a valid ELF this loader does not handle (ElfFile::parse()).
  static absl::StatusOr<LibraryInfo> readLibraryInfo(const std::string& path);

  // LibraryResolver::libraryInfo()
  //
  // readLibraryInfo() of the canonical path `path`, cached; nullopt if it is not an x86-64
  // ELF shared object (the InvalidArgument and Unimplemented cases, which resolution skips
  // as ld.so does). Other errors (I/O) are returned and not cached.
  absl::StatusOr<std::optional<LibraryInfo>> libraryInfo(const std::string& path);

  // LibraryResolver::resolveNeeded()
  //
  // The library the DT_NEEDED `name` resolves to (Note [Resolving DT_NEEDED like ld.so]):
  // `name` itself if it holds a '/', else the first of `search_dirs`/`name` that exists and
  // is an x86-64 ELF shared object. nullopt if there is none. Errors: libraryInfo()'s.
  absl::StatusOr<std::optional<ResolvedLibrary>> resolveNeeded(
      const std::string& name, const std::vector<std::string>& search_dirs);

 private:
  absl::Mutex mu_;
  // Keyed by canonical path; nullopt for files that are not x86-64 shared objects.
  absl::flat_hash_map<std::string, std::optional<LibraryInfo>> libraries_ ABSL_GUARDED_BY(mu_);
};

// canonicalPath()
//
// realpath(3) of `path`. Errors: the errno (NotFound for a missing file) naming `path`.
absl::StatusOr<std::string> canonicalPath(const std::string& path);

// The directory part of `path` ("." if it has none, "/" for a file in the root).
std::string dirName(absl::string_view path);

// `value` with every $ORIGIN and ${ORIGIN} replaced by `origin`; whether it has one.
std::string expandOrigin(absl::string_view value, const std::string& origin);
bool hasOrigin(absl::string_view value);

// searchDirs()
//
// Where the DT_NEEDED names of `elf`, whose canonical directory is `origin`, are looked
// up, in order (Note [Resolving DT_NEEDED like ld.so]).
std::vector<std::string> searchDirs(const ElfFile& elf, const std::string& origin);

// mapLibrary()
//
// A read-only mapping of the library at `path` (libtorch_cpu is large; only headers and
// .dynsym are read). Errors: MappedFile::Map()'s; InvalidArgument for an empty file.
absl::StatusOr<std::shared_ptr<MappedFile>> mapLibrary(const std::string& path);

}  // namespace pyfleet::internal
