// Per-interpreter copies of the interpreter library, extensions and their Python-dependent
// libraries; see library_loader.h.
#include "loader/library_loader.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "loader/base/mapped_file.h"
#include "loader/base/owned_fd.h"
#include "loader/base/posix_error.h"
#include "loader/base/status_macros.h"
#include "pyfleet/interpreter_abi.h"
#include "loader/elf_edit.h"
#include "loader/elf_file.h"
#include "loader/global_scope.h"
#include "loader/library_template.h"
#include "loader/segment_sharing.h"
#include "loader/self_binding.h"

namespace pyfleet::internal {

// A Python-dependent library some template needs: its canonical path, its number in
// this loader and the file name of its per-interpreter copies, with
// LibraryTemplate::kIdPlaceholder for the id.
struct LibraryLoader::DependencyRef {
  std::string path;
  int ordinal = 0;
  std::string copy_name;
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

// Keeps copy file names below NAME_MAX (255) whatever the original's name.
constexpr size_t kMaxBaseNameInCopyName = 200;

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string baseName(absl::string_view path) {
  const size_t slash = path.rfind('/');
  absl::string_view base = slash == absl::string_view::npos ? path : path.substr(slash + 1);
  return std::string(base.substr(0, kMaxBaseNameInCopyName));
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
  // A template too: it sheds the dependencies already in the global scope (Note
  // [Dependencies already in the global scope]), which every extension copy, needing it,
  // would otherwise walk again, and a DT_SONAME becomes the copy's own path (Note [A copy
  // is known only by its own path]).
  absl::Cleanup free_index = [&] {  // on failure: the index stays free
    absl::MutexLock lock(&mu_);
    interpreters_.erase(index);
  };
  PYFLEET_ASSIGN_OR_RETURN(std::string canonical, canonicalPath(path));
  PYFLEET_ASSIGN_OR_RETURN(const BuiltTemplate* built, templateFor(canonical, nullptr, true));
  PYFLEET_ASSIGN_OR_RETURN(
      void* handle, loadCopy(*built, index, absl::StrCat("i", LibraryTemplate::kIdPlaceholder, "-interpreter.so")));
  std::move(free_index).Cancel();
  slot->handle = handle;
  return handle;
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

LibraryLoader::DependencyRef LibraryLoader::dependencyRef(const std::string& path) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = dependency_ordinals_.try_emplace(path, next_dependency_ordinal_);
  if (inserted) ++next_dependency_ordinal_;
  return DependencyRef{path, it->second,
                       absl::StrFormat("i%s-d%04d-%s", LibraryTemplate::kIdPlaceholder, it->second,
                                       baseName(path))};
}

absl::StatusOr<LibraryLoader::BuiltTemplate> LibraryLoader::buildTemplate(
    const std::string& path, const DependencyRef* dependency, bool interpreter_library) {
  PYFLEET_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, mapLibrary(path));
  PYFLEET_ASSIGN_OR_RETURN(ElfFile elf, ElfFile::parse(file->bytes(), path));
  const std::string origin = dirName(path);
  const std::vector<std::string> dirs = searchDirs(elf, origin);
  const std::string interpreter_copy = absl::StrCat("i", LibraryTemplate::kIdPlaceholder, "-interpreter.so");

  ElfEdits edits;
  if (!interpreter_library) edits.add_needed.push_back(workspace_->pathOf(interpreter_copy));
  std::vector<DependencyRef> dependencies;
  for (const std::string& name : elf.needed()) {
    const std::string expanded = expandOrigin(name, origin);
    PYFLEET_ASSIGN_OR_RETURN(std::optional<ResolvedLibrary> resolved, resolver_.resolveNeeded(expanded, dirs));
    if (resolved && resolved->info.python_dependent) {
      DependencyRef ref = dependencyRef(resolved->path);
      edits.replace_needed.emplace_back(name, workspace_->pathOf(ref.copy_name));
      const bool seen = std::any_of(dependencies.begin(), dependencies.end(),
                                    [&](const DependencyRef& d) { return d.path == ref.path; });
      if (!seen) dependencies.push_back(std::move(ref));
      continue;
    }
    if (expanded != name) {
      // The copy lives in the workspace, where $ORIGIN would point: use the real place.
      edits.replace_needed.emplace_back(name, resolved ? resolved->path : expanded);
      continue;
    }
    if (!resolved) continue;
    PYFLEET_ASSIGN_OR_RETURN(bool global, inGlobalScope(name, resolved->info, resolver_));
    if (global) edits.remove_needed.push_back(name);  // Note [Dependencies already in the global scope]
  }
  const std::optional<std::string>& search = elf.runpath() ? elf.runpath() : elf.rpath();
  if (search && hasOrigin(*search)) edits.runpath = expandOrigin(*search, origin);
  // Note [A copy is known only by its own path] (library_copy.h): a copy whose name is
  // known here gets it as DT_SONAME; an extension copy's serial is not known yet, and the
  // workspace removes any DT_SONAME it still has.
  if (dependency != nullptr) {
    edits.soname = workspace_->pathOf(dependency->copy_name);
  } else if (interpreter_library && elf.soname()) {
    edits.soname = workspace_->pathOf(interpreter_copy);
  }
  edits.demote_unique = elf.uniqueSymbolCount() > 0;  // Note [STB_GNU_UNIQUE demotion]
  {
    // Note [Redirected references] (library_loader.h). The scan runs without mu_ (a
    // leaf lock for look-ups): on the interpreter library's definitions to record what it
    // takes over, on any other library's references against a copy of that set.
    constexpr absl::string_view kPrefix = PYFLEET_REDIRECT_PREFIX;
    absl::flat_hash_set<std::string> redirected;
    if (!interpreter_library) {
      absl::MutexLock lock(&mu_);
      redirected = redirected_;
    }
    for (uint64_t i = 0; i < elf.dynsymCount(); ++i) {
      if (interpreter_library == (elf.symbol(i).st_shndx == SHN_UNDEF)) continue;
      const std::string name = elf.symbolName(i);
      if (interpreter_library && absl::StartsWith(name, kPrefix)) {
        redirected.insert(name.substr(kPrefix.size()));
      } else if (!interpreter_library && redirected.contains(name)) {
        edits.rename_undefined.emplace_back(name, absl::StrCat(kPrefix, name));
      }
    }
    if (interpreter_library && !redirected.empty()) {
      absl::MutexLock lock(&mu_);
      redirected_.insert(redirected.begin(), redirected.end());
    }
  }

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
    const std::string& path, const DependencyRef* dependency, bool interpreter_library) {
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
  const int ordinal = dependency.ordinal;
  if (slot.dependencies.contains(ordinal)) return absl::OkStatus();
  if (std::find(visiting.begin(), visiting.end(), ordinal) != visiting.end()) {
    return absl::UnimplementedError(absl::StrCat(
        dependency.path, ": cycle of Python-dependent libraries is not supported"));
  }
  PYFLEET_ASSIGN_OR_RETURN(const BuiltTemplate* built, templateFor(dependency.path, &dependency));
  visiting.push_back(ordinal);
  for (const DependencyRef& inner : built->dependencies) {
    PYFLEET_RETURN_IF_ERROR(ensureDependency(slot, index, inner, visiting));
  }
  visiting.pop_back();
  // Its DT_NEEDED on the interpreter copy and on the copies above match them by name.
  PYFLEET_ASSIGN_OR_RETURN(void* handle, loadCopy(*built, index, dependency.copy_name));
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
