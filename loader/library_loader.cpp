// Per-interpreter copies of the interpreter library, extensions and their Python-dependent
// libraries; see library_loader.h.
#include "loader/library_loader.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "loader/elf_file.h"
#include "loader/segment_sharing.h"
#include "loader/self_binding.h"
#include "loader/base/mapped_file.h"
#include "loader/base/owned_fd.h"
#include "loader/base/posix_error.h"
#include "loader/base/status_macros.h"

namespace pyfleet::internal {

// A Python-dependent library some template needs: the DT_NEEDED it replaced, its
// canonical path and its info.
struct LibraryLoader::DependencyRef {
  std::string path;
  LibraryInfo info;
};


// A patched library and the Python-dependent libraries its copies need loaded first.
struct LibraryLoader::BuiltTemplate {
  LibraryTemplate tmpl;
  std::vector<DependencyRef> dependencies;
  std::string source_path;
  // See Note [Sharing read-only segments with the original file].
  std::vector<SharedSegment> shared_segments;
  // File pages of a copy that no segment maps, released once it is loaded (Note [Copies
  // live in memory]).
  std::vector<FileRange> unmapped;
  // The original file the template was made from, kept open: copies are its bytes plus
  // the template's changes (LibraryTemplate::keepOnlyChanges), and their shared segments
  // map it, even if the path is replaced on disk meanwhile (a package upgrade).
  OwnedFd source;
  uint64_t source_size = 0;
  struct timespec source_mtime {};  // to notice the file rewritten in place (same inode)
};

// One template, built once by whichever thread asks first. Once `built` is set it is
// never changed or freed before the loader, so a pointer to it can be used unlocked.
struct LibraryLoader::TemplateSlot {
  absl::Mutex mu;
  std::unique_ptr<const BuiltTemplate> built ABSL_GUARDED_BY(mu);
};

// One interpreter's copies.
struct LibraryLoader::InterpreterSlot {
  absl::Mutex mu;
  void* handle ABSL_GUARDED_BY(mu) = nullptr;  // its interpreter library copy
  // Dependency ordinal -> handle of this interpreter's copy.
  absl::flat_hash_map<int, void*> dependencies ABSL_GUARDED_BY(mu);
};

namespace {

constexpr const char* kDefaultLibraryDirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                               "/lib", "/usr/lib"};
// Keeps copy file names below NAME_MAX (255) whatever the original's name.
constexpr size_t kMaxBaseNameInCopyName = 200;

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

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

std::string baseName(absl::string_view path) {
  const size_t slash = path.rfind('/');
  absl::string_view base = slash == absl::string_view::npos ? path : path.substr(slash + 1);
  return std::string(base.substr(0, kMaxBaseNameInCopyName));
}

std::string expandOrigin(absl::string_view value, const std::string& origin) {
  return absl::StrReplaceAll(value, {{"${ORIGIN}", origin}, {"$ORIGIN", origin}});
}

bool hasOrigin(absl::string_view value) {
  return absl::StrContains(value, "$ORIGIN") || absl::StrContains(value, "${ORIGIN}");
}

// Maps a library to read it (libtorch_cpu is large; only headers and .dynsym are read).
absl::StatusOr<std::shared_ptr<MappedFile>> mapLibrary(const std::string& path) {
  PYFLEET_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Map(path, MappedFile::Access::kReadOnly));
  if (file->size() == 0) return absl::InvalidArgumentError(absl::StrCat(path, ": empty file"));
  return file;
}

// Note [Forks while a copy is loading]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Releasing a shared segment's pages from a copy's file (Note [Copies live in memory])
// is safe only because nothing maps those pages any more: this process re-mapped them
// onto the original file first. A child forked between the copy's dlopen and that
// re-mapping inherits mappings of the copy's file and would read zeros there. Forks are
// counted (pthread_atfork prepare handler, which runs before the child's address space
// is copied); if any happened while a copy was loading, its shared pages stay in its
// file. Pages no segment maps (symbol tables, section headers) are released regardless.
std::atomic<uint64_t> g_forks{0};

// Spare capacity for what editElf appends (page alignment, program headers, .dynamic and
// new strings) beyond a copy of .dynstr, so that it never reallocates a large image.
constexpr size_t kRelayoutSlack = 64 * 1024;

// Note [Dependencies already in the global scope]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Every dlopen walks the new object's whole dependency tree, and for each DT_NEEDED in it
// glibc's _dl_map_object compares the name with every loaded object's names (strcmp).
// libtorch_python's tree is LibTorch's: some 300 libraries on Debian (opencv, gdal, ...),
// against 330 loaded objects plus 26 more per interpreter; that was about 6% of a later
// interpreter's start-up. Yet a copy is RTLD_LOCAL, so glibc looks every symbol up in the
// global scope first: a dependency that is already there (the host links LibTorch, so
// libtorch_cpu, libc10, libstdc++ ... are) can never supply a binding through the copy's
// own scope. Its DT_NEEDED is therefore dropped from the template, and the copy's tree
// holds only what is not global: the interpreter copy, other copies, libraries like
// libshm. Its DT_VERNEED entries stay; glibc finds those libraries among the loaded
// objects by name (the dlopen(RTLD_NOLOAD) below makes sure the name is known).
// "In the global scope" is checked, not assumed: the library answers dlopen(name,
// RTLD_NOLOAD), and dlsym on the global scope (globalScopeHandle()) of one of its
// exported symbols lands in it.
bool loadedInGlobalScope(const std::string& needed_name, const std::string& exported_symbol) {
  if (exported_symbol.empty()) return false;
  void* handle = ::dlopen(needed_name.c_str(), RTLD_NOLOAD | RTLD_LAZY);
  if (handle == nullptr) return false;
  absl::Cleanup close = [handle] { ::dlclose(handle); };
  struct link_map* map = nullptr;
  if (::dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) return false;
  void* address = ::dlsym(globalScopeHandle(), exported_symbol.c_str());
  if (address == nullptr) return false;
  Dl_info info;
  struct link_map* found = nullptr;
  if (::dladdr1(address, &info, reinterpret_cast<void**>(&found), RTLD_DL_LINKMAP) == 0) return false;
  return found == map;
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

}  // namespace

LibraryLoader::LibraryLoader(std::unique_ptr<LibraryWorkspace> workspace)
    : workspace_(std::move(workspace)) {}

LibraryLoader::~LibraryLoader() = default;

absl::StatusOr<std::unique_ptr<LibraryLoader>> LibraryLoader::Create(std::string temp_root) {
  static std::once_flag count_forks;
  std::call_once(count_forks, [] { ::pthread_atfork([] { g_forks.fetch_add(1); }, nullptr, nullptr); });
  PYFLEET_ASSIGN_OR_RETURN(std::unique_ptr<LibraryWorkspace> workspace,
                           LibraryWorkspace::create(std::move(temp_root)));
  if (absl::StrContains(workspace->path(), LibraryTemplate::kIdPlaceholder)) {
    return absl::InvalidArgumentError(absl::StrCat("workspace path ", workspace->path(),
                                                   " contains the template placeholder ",
                                                   LibraryTemplate::kIdPlaceholder));
  }
  return std::unique_ptr<LibraryLoader>(new LibraryLoader(std::move(workspace)));
}

std::string LibraryLoader::interpreterLibraryPath(int index) const {
  absl::StatusOr<std::string> id = LibraryTemplate::formatId(index);
  if (!id.ok()) return "";
  return workspace_->pathOf(absl::StrCat("i", *id, "-interpreter.so"));
}

LibraryLoader::Stats LibraryLoader::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void LibraryLoader::addCopyTime(double seconds, uint64_t shared_bytes) {
  absl::MutexLock lock(&mu_);
  ++stats_.copies_loaded;
  stats_.copy_seconds += seconds;
  stats_.shared_bytes += shared_bytes;
}

absl::StatusOr<void*> LibraryLoader::loadInterpreterLibrary(const std::string& path, int index) {
  PYFLEET_RETURN_IF_ERROR(LibraryTemplate::formatId(index).status());
  auto slot = std::make_shared<InterpreterSlot>();
  absl::MutexLock slot_lock(&slot->mu);  // lock order: slot -> mu_
  {
    absl::MutexLock lock(&mu_);
    if (!interpreters_.try_emplace(index, slot).second) {
      return absl::AlreadyExistsError(
          absl::StrCat("interpreter ", index, " already has an interpreter library copy"));
    }
  }
  // A template too, though it has no per-interpreter names: it sheds the dependencies
  // already in the global scope (Note [Dependencies already in the global scope]), which
  // every extension copy, needing it, would otherwise walk again.
  absl::StatusOr<void*> handle = [&]() -> absl::StatusOr<void*> {
    PYFLEET_ASSIGN_OR_RETURN(std::string canonical, canonicalPath(path));
    PYFLEET_ASSIGN_OR_RETURN(const BuiltTemplate* built, templateFor(canonical, nullptr, true));
    return loadCopy(*built, index, absl::StrCat("i", LibraryTemplate::kIdPlaceholder, "-interpreter.so"));
  }();
  if (!handle.ok()) {
    absl::MutexLock lock(&mu_);
    interpreters_.erase(index);
    return handle.status();
  }
  slot->handle = *handle;
  return *handle;
}

absl::StatusOr<std::shared_ptr<LibraryLoader::InterpreterSlot>> LibraryLoader::interpreterSlot(
    int index) const {
  absl::MutexLock lock(&mu_);
  auto it = interpreters_.find(index);
  if (it == interpreters_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "interpreter ", index, " has no interpreter library copy; call loadInterpreterLibrary"));
  }
  return it->second;
}

absl::StatusOr<std::optional<LibraryLoader::LibraryInfo>> LibraryLoader::libraryInfo(
    const std::string& path) {
  {
    absl::MutexLock lock(&mu_);
    auto it = libraries_.find(path);
    if (it != libraries_.end()) return it->second;
  }
  // Parse without holding mu_; a racing thread may parse too, the first insert wins.
  std::string exported;
  bool defines = false;
  std::vector<std::string> needed, dirs;
  absl::StatusOr<bool> python = [&]() -> absl::StatusOr<bool> {
    PYFLEET_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, mapLibrary(path));
    PYFLEET_ASSIGN_OR_RETURN(ElfFile elf, ElfFile::parse(file->bytes(), path));
    exported = elf.firstExportedSymbol();
    defines = elf.definedSymbolCount() > 0;
    if (exported.empty()) {
      needed = elf.needed();
      dirs = searchDirs(elf, dirName(path));
    }
    return elf.hasUndefinedPythonSymbols();
  }();
  if (!python.ok() && python.status().code() != absl::StatusCode::kInvalidArgument &&
      python.status().code() != absl::StatusCode::kUnimplemented) {
    return python.status();  // an I/O error, not a file of the wrong kind
  }
  std::optional<LibraryInfo> info;
  if (python.ok()) {
    info.emplace().python_dependent = *python;
    info->exported_symbol = std::move(exported);
    info->defines_symbols = defines;
    info->needed = std::move(needed);
    info->search_dirs = std::move(dirs);
  }
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = libraries_.try_emplace(path, info);
  if (inserted && it->second && it->second->python_dependent) {
    it->second->ordinal = next_dependency_ordinal_++;
    it->second->copy_name = absl::StrFormat("i%s-d%04d-%s", LibraryTemplate::kIdPlaceholder,
                                            it->second->ordinal, baseName(path));
  }
  return it->second;
}

absl::StatusOr<std::optional<std::pair<std::string, LibraryLoader::LibraryInfo>>>
LibraryLoader::resolveNeeded(const std::string& name, const std::vector<std::string>& search_dirs) {
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
    if (info) return std::make_pair(*std::move(canonical), *std::move(info));
  }
  return std::nullopt;
}

absl::StatusOr<bool> LibraryLoader::inGlobalScope(const std::string& name, const LibraryInfo& info) {
  if (!info.exported_symbol.empty()) return loadedInGlobalScope(name, info.exported_symbol);
  // Definitions but none to probe with (all weak, TLS, ...): keep it.
  if (info.defines_symbols) return false;
  // One that defines nothing (libtorch.so.1.13 only pulls in libtorch_cpu and others) can
  // bind nothing itself: it counts as global when loaded and all it needs is global.
  void* handle = ::dlopen(name.c_str(), RTLD_NOLOAD | RTLD_LAZY);
  if (handle == nullptr) return false;
  ::dlclose(handle);
  if (info.needed.empty()) return false;
  for (const std::string& dependency : info.needed) {
    PYFLEET_ASSIGN_OR_RETURN(auto resolved, resolveNeeded(dependency, info.search_dirs));
    if (!resolved || resolved->second.exported_symbol.empty() ||
        !loadedInGlobalScope(dependency, resolved->second.exported_symbol)) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<LibraryLoader::BuiltTemplate> LibraryLoader::buildTemplate(
    const std::string& path, const LibraryInfo* dependency, bool interpreter_library) {
  PYFLEET_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, mapLibrary(path));
  PYFLEET_ASSIGN_OR_RETURN(ElfFile elf, ElfFile::parse(file->bytes(), path));
  const std::string origin = dirName(path);
  const std::vector<std::string> dirs = searchDirs(elf, origin);

  ElfEdits edits;
  if (!interpreter_library) {
    edits.add_needed.push_back(workspace_->pathOf(
        absl::StrCat("i", LibraryTemplate::kIdPlaceholder, "-interpreter.so")));
  }
  std::vector<DependencyRef> dependencies;
  for (const std::string& name : elf.needed()) {
    const std::string expanded = expandOrigin(name, origin);
    PYFLEET_ASSIGN_OR_RETURN(auto resolved, resolveNeeded(expanded, dirs));
    absl::StatusOr<bool> global = resolved && !resolved->second.python_dependent && expanded == name
                                      ? inGlobalScope(name, resolved->second)
                                      : false;
    if (!global.ok()) return global.status();
    if (resolved && resolved->second.python_dependent) {
      const LibraryInfo& info = resolved->second;
      edits.replace_needed.emplace_back(name, workspace_->pathOf(info.copy_name));
      const bool seen = std::any_of(dependencies.begin(), dependencies.end(),
                                    [&](const DependencyRef& d) { return d.path == resolved->first; });
      if (!seen) dependencies.push_back(DependencyRef{resolved->first, info});
    } else if (resolved && expanded == name && *global) {
      edits.remove_needed.push_back(name);  // Note [Dependencies already in the global scope]
    } else if (expanded != name) {
      // The copy lives in the workspace, where $ORIGIN would point: use the real place.
      edits.replace_needed.emplace_back(name, resolved ? resolved->first : expanded);
    }
  }
  const std::optional<std::string>& search = elf.runpath() ? elf.runpath() : elf.rpath();
  if (search && hasOrigin(*search)) edits.runpath = expandOrigin(*search, origin);
  if (dependency != nullptr) edits.soname = workspace_->pathOf(dependency->copy_name);
  edits.demote_unique = elf.uniqueSymbolCount() > 0;  // Note [STB_GNU_UNIQUE demotion]

  std::string bytes;
  bytes.reserve(file->bytes().size() + elf.dynstr().size() + kRelayoutSlack);
  bytes.append(file->bytes().data(), file->bytes().size());
  // Note [Binding a copy's references to itself]: decided once here for every copy.
  PYFLEET_ASSIGN_OR_RETURN(SelfBindingCount bound, bindSelfReferences(elf, bytes, definedInGlobalScope));
  {
    absl::MutexLock lock(&mu_);
    stats_.self_bound_relocations += bound.rewritten;
  }
  PYFLEET_ASSIGN_OR_RETURN(LibraryTemplate tmpl,
                           LibraryTemplate::create(std::move(bytes), path, edits));
  std::vector<SharedSegment> shared = findShareableSegments(
      elf, tmpl.image(), tmpl.placeholderOffsets(), LibraryTemplate::kIdPlaceholder.size());
  PYFLEET_ASSIGN_OR_RETURN(ElfFile copy_layout, ElfFile::parse(tmpl.image(), path));
  std::vector<FileRange> unmapped = unmappedRanges(copy_layout);
  OwnedFd source(::fcntl(file->fd(), F_DUPFD_CLOEXEC, 0));
  if (!source.valid()) return PosixError(errno, absl::StrCat("keeping ", path, " open"));
  struct stat st {};
  if (::fstat(source.get(), &st) != 0) return PosixError(errno, absl::StrCat("stat of ", path));
  PYFLEET_RETURN_IF_ERROR(tmpl.keepOnlyChanges(file->bytes()));
  return BuiltTemplate{std::move(tmpl),      std::move(dependencies), path, std::move(shared),
                       std::move(unmapped), std::move(source),       file->bytes().size(), st.st_mtim};
}

absl::StatusOr<const LibraryLoader::BuiltTemplate*> LibraryLoader::templateFor(
    const std::string& path, const LibraryInfo* dependency, bool interpreter_library) {
  std::shared_ptr<TemplateSlot> slot;
  {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<TemplateSlot>& entry =
        templates_[absl::StrCat(interpreter_library ? "interp:" : dependency != nullptr ? "dep:" : "ext:",
                                path)];
    if (entry == nullptr) entry = std::make_shared<TemplateSlot>();
    slot = entry;
  }
  absl::MutexLock slot_lock(&slot->mu);  // the builder holds this; others wait here
  if (slot->built == nullptr) {
    const auto start = std::chrono::steady_clock::now();
    PYFLEET_ASSIGN_OR_RETURN(BuiltTemplate built, buildTemplate(path, dependency, interpreter_library));
    slot->built = std::make_unique<const BuiltTemplate>(std::move(built));
    const double seconds = secondsSince(start);
    absl::MutexLock lock(&mu_);
    ++stats_.templates_built;
    stats_.template_seconds += seconds;
  }
  return slot->built.get();
}

absl::StatusOr<void*> LibraryLoader::loadCopy(const BuiltTemplate& built, int index,
                                              const std::string& name_template) {
  const LibraryTemplate& source = built.tmpl;
  const auto start = std::chrono::steady_clock::now();
  PYFLEET_ASSIGN_OR_RETURN(std::string name, LibraryTemplate::withId(name_template, index));
  // Straight from the template into the file: no per-copy image in memory.
  uint64_t shared_bytes = 0;
  const uint64_t forks_before = g_forks.load();  // Note [Forks while a copy is loading]
  PYFLEET_ASSIGN_OR_RETURN(
      void* handle,
      workspace_->loadWith(
          name,
          [&](int fd, const std::string& path) {
            return source.writeInstance(
                index, [&](absl::string_view bytes, uint64_t offset) { return writeFileAt(fd, bytes, offset, path); },
                [&]() -> absl::Status {
                  // A file rewritten in place since the template was made would give a
                  // copy of new bytes with old changes: refuse instead of loading that.
                  struct stat st {};
                  if (::fstat(built.source.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != built.source_size ||
                      st.st_mtim.tv_sec != built.source_mtime.tv_sec || st.st_mtim.tv_nsec != built.source_mtime.tv_nsec) {
                    return absl::FailedPreconditionError(absl::StrCat(
                        built.source_path, " was modified in place after this process first loaded it; "
                        "restart the process to use the new file"));
                  }
                  return copyFileInto(built.source.get(), built.source_size, fd, path);
                });
          },
          [&](void* loaded, int fd) {
            // A copy that keeps its own pages is still correct, so a failure only costs
            // memory. Note [Copies live in memory]: what is shared leaves the copy's file.
            std::vector<SharedSegment> moved;
            absl::StatusOr<uint64_t> shared =
                shareSegments(loaded, built.source.get(), built.source_path, built.shared_segments, &moved);
            shared_bytes = shared.ok() ? *shared : 0;
            std::vector<FileRange> unused = built.unmapped;
            if (g_forks.load() == forks_before) {
              for (const SharedSegment& s : moved) unused.push_back(s.release);
            }
            releaseFileRanges(fd, unused);
          }));
  addCopyTime(secondsSince(start), shared_bytes);
  return handle;
}

absl::Status LibraryLoader::ensureDependency(InterpreterSlot& slot, int index,
                                             const DependencyRef& dependency,
                                             std::vector<int>& visiting) {
  // Requires slot.mu (the caller holds it).
  const int ordinal = dependency.info.ordinal;
  if (slot.dependencies.contains(ordinal)) return absl::OkStatus();
  if (std::find(visiting.begin(), visiting.end(), ordinal) != visiting.end()) {
    return absl::UnimplementedError(absl::StrCat(
        dependency.path, ": cycle of Python-dependent libraries is not supported"));
  }
  PYFLEET_ASSIGN_OR_RETURN(const BuiltTemplate* built,
                           templateFor(dependency.path, &dependency.info));
  visiting.push_back(ordinal);
  for (const DependencyRef& inner : built->dependencies) {
    PYFLEET_RETURN_IF_ERROR(ensureDependency(slot, index, inner, visiting));
  }
  visiting.pop_back();
  // Its DT_NEEDED on the interpreter copy and on the copies above match them by name.
  PYFLEET_ASSIGN_OR_RETURN(void* handle, loadCopy(*built, index, dependency.info.copy_name));
  slot.dependencies[ordinal] = handle;
  return absl::OkStatus();
}

absl::StatusOr<void*> LibraryLoader::loadExtension(const std::string& path, int index) {
  PYFLEET_ASSIGN_OR_RETURN(std::string id, LibraryTemplate::formatId(index));
  PYFLEET_ASSIGN_OR_RETURN(std::shared_ptr<InterpreterSlot> slot, interpreterSlot(index));
  PYFLEET_ASSIGN_OR_RETURN(std::string canonical, canonicalPath(path));
  const BuiltTemplate* built = nullptr;
  {
    absl::MutexLock slot_lock(&slot->mu);
    if (slot->handle == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("interpreter ", index, "'s interpreter library copy is not loaded"));
    }
    PYFLEET_ASSIGN_OR_RETURN(built, templateFor(canonical, nullptr));
    std::vector<int> visiting;
    for (const DependencyRef& dependency : built->dependencies) {
      PYFLEET_RETURN_IF_ERROR(ensureDependency(*slot, index, dependency, visiting));
    }
  }
  int serial = 0;
  {
    absl::MutexLock lock(&mu_);
    serial = next_extension_serial_++;
  }
  // No loader lock is held while the extension's constructors run.
  return loadCopy(*built, index,
                  absl::StrFormat("i%s-e%06d-%s", id, serial, baseName(canonical)));
}

}  // namespace pyfleet::internal
