// Which file a DT_NEEDED name resolves to, and what it is; see library_resolver.h.
#include "loader/library_resolver.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "loader/base/posix_error.h"
#include "loader/base/status_macros.h"

namespace pyfleet::internal {
namespace {

constexpr const char* kDefaultLibraryDirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                               "/lib", "/usr/lib"};

}  // namespace

absl::StatusOr<std::string> canonicalPath(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) return PosixError(errno, absl::StrCat("resolving ", path));
  std::string out = resolved;
  ::free(resolved);
  return out;
}

std::string dirName(absl::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  return slash == 0 ? std::string("/") : std::string(path.substr(0, slash));
}

std::string expandOrigin(absl::string_view value, const std::string& origin) {
  return absl::StrReplaceAll(value, {{"${ORIGIN}", origin}, {"$ORIGIN", origin}});
}

bool hasOrigin(absl::string_view value) {
  return absl::StrContains(value, "$ORIGIN") || absl::StrContains(value, "${ORIGIN}");
}

std::vector<std::string> searchDirs(const ElfFile& elf, const std::string& origin) {
  std::vector<std::string> dirs;
  auto add = [&](const std::optional<std::string>& list) {
    if (!list) return;
    for (absl::string_view dir : absl::StrSplit(*list, ':', absl::SkipEmpty())) {
      dirs.push_back(expandOrigin(dir, origin));
    }
  };
  if (!elf.runpath()) add(elf.rpath());
  add(elf.runpath());
  for (const char* dir : kDefaultLibraryDirs) dirs.emplace_back(dir);
  return dirs;
}

absl::StatusOr<std::shared_ptr<MappedFile>> mapLibrary(const std::string& path) {
  PYFLEET_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Map(path, MappedFile::Access::kReadOnly));
  if (file->size() == 0) return absl::InvalidArgumentError(absl::StrCat(path, ": empty file"));
  return file;
}

absl::StatusOr<LibraryInfo> LibraryResolver::readLibraryInfo(const std::string& path) {
  PYFLEET_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, mapLibrary(path));
  PYFLEET_ASSIGN_OR_RETURN(ElfFile elf, ElfFile::parse(file->bytes(), path));
  LibraryInfo info;
  info.python_dependent = elf.hasUndefinedPythonSymbols();
  info.exported_symbol = elf.firstExportedSymbol();
  info.defines_symbols = elf.definedSymbolCount() > 0;
  if (info.exported_symbol.empty()) {
    info.needed = elf.needed();
    info.search_dirs = searchDirs(elf, dirName(path));
  }
  return info;
}

absl::StatusOr<std::optional<LibraryInfo>> LibraryResolver::libraryInfo(const std::string& path) {
  {
    absl::MutexLock lock(&mu_);
    auto it = libraries_.find(path);
    if (it != libraries_.end()) return it->second;
  }
  // Parse without holding mu_; a racing thread may parse too, the first insert wins.
  absl::StatusOr<LibraryInfo> read = readLibraryInfo(path);
  std::optional<LibraryInfo> info;
  if (read.ok()) {
    info = *std::move(read);
  } else if (read.status().code() != absl::StatusCode::kInvalidArgument &&
             read.status().code() != absl::StatusCode::kUnimplemented) {
    return read.status();  // an I/O error, not a file of the wrong kind
  }
  absl::MutexLock lock(&mu_);
  return libraries_.try_emplace(path, std::move(info)).first->second;
}

absl::StatusOr<std::optional<ResolvedLibrary>> LibraryResolver::resolveNeeded(
    const std::string& name, const std::vector<std::string>& search_dirs) {
  std::vector<std::string> candidates;
  if (absl::StrContains(name, "/")) {
    candidates.push_back(name);
  } else {
    for (const std::string& dir : search_dirs) candidates.push_back(absl::StrCat(dir, "/", name));
  }
  for (const std::string& candidate : candidates) {
    if (::access(candidate.c_str(), F_OK) != 0) continue;
    absl::StatusOr<std::string> canonical = canonicalPath(candidate);
    if (!canonical.ok()) continue;
    PYFLEET_ASSIGN_OR_RETURN(std::optional<LibraryInfo> info, libraryInfo(*canonical));
    if (info) return ResolvedLibrary{*std::move(canonical), *std::move(info)};
  }
  return std::nullopt;
}

}  // namespace pyfleet::internal
