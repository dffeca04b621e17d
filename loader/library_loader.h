// File: library_loader.h
//
// LibraryLoader gives every interpreter its own private copies of the native libraries
// that must bind to that interpreter's CPython (ARCHITECTURE.md "How isolation works",
// points 2-5 and 7). The host runtime makes one per InterpreterManager:
//
//   PYFLEET_ASSIGN_OR_RETURN(std::unique_ptr<LibraryLoader> loader, LibraryLoader::Create());
//   PYFLEET_ASSIGN_OR_RETURN(void* interp, loader->loadInterpreterLibrary(kInterpreterSo, 0));
//   // ... later, from interpreter 0's _PyImport_FindSharedFuncptr, with its GIL held:
//   PYFLEET_ASSIGN_OR_RETURN(void* ext, loader->loadExtension(
//       "/usr/lib/python3/dist-packages/torch/_C.cpython-311-x86_64-linux-gnu.so", 0));
//   void* init = dlsym(ext, "PyInit__C");
//
// What gets copied, per interpreter:
//  - the interpreter library: a copy (own inode) with DT_SONAME set to its own path,
//    "i<ID>-interpreter.so";
//  - every extension module: a copy with an added DT_NEEDED on that interpreter's library
//    copy (first, so Py* references bind to that CPython), "i<ID>-e<serial>-<name>";
//  - every library an extension (or such a library) needs that has undefined Py*/_Py*
//    symbols, e.g. libtorch_python.so.1.13: one copy per interpreter, reused by all of
//    that interpreter's extensions, with DT_SONAME set to its own path, the same added
//    DT_NEEDED, STB_GNU_UNIQUE symbols demoted (Note [STB_GNU_UNIQUE demotion]), and the
//    needing library's DT_NEEDED re-pointed at it, "i<ID>-d<ordinal>-<name>".
// Libraries without undefined Python symbols (libtorch_cpu, libc10, libstdc++, ...) are
// never copied: they stay process-global, and a copy's DT_NEEDED on one already in the
// global scope is dropped (Note [Dependencies already in the global scope], global_scope.h).
// Which file a DT_NEEDED names, and whether it needs Python, is LibraryResolver's answer
// (Note [Resolving DT_NEEDED like ld.so], library_resolver.h). A copy's references to its
// own definitions are resolved in the template (Note [Binding a copy's references to
// itself], self_binding.h). Each library is patched once into a LibraryTemplate (Note
// [Template placeholders]); a copy is an instantiation written into the private
// workspace, dlopen'ed RTLD_NOW|RTLD_LOCAL and unlinked at once (Note [DT_NEEDED matches
// loaded objects by name]). Copies also get any $ORIGIN in their DT_RUNPATH/DT_RPATH or
// DT_NEEDED replaced by the original's directory, since the copy lives elsewhere. Handles
// are never dlclose'd.
//
// No copy answers for another library's name: every copy is known only by its own path
// in the workspace (Note [A copy is known only by its own path], library_copy.h). The
// copies of the interpreter library and of Python-dependent libraries get that path as
// DT_SONAME in their templates; an extension copy that still carries its original's
// DT_SONAME has it removed by the workspace before it is loaded. So a later DT_NEEDED
// "libz.so.1" or "libpyfleet_interpreter.so" anywhere in the process loads the real file.
//
// Note [Redirected references]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Some functions of process-global libraries must not be called the same way by N
// private copies of one library. The case that needs it: torch 2.x's libtorch_python
// defines an operator from a static initializer (TORCH_LIBRARY_FRAGMENT(inductor)
// m.def("resize_storage_bytes_...")), and the one process-wide dispatcher refuses a
// second definition by throwing, inside the second interpreter's dlopen: std::terminate.
// So the interpreter library may take such references over: when it defines
// PYFLEET_REDIRECT_PREFIX + NAME (pyfleet/interpreter_abi.h), every undefined reference to
// NAME in a private copy is renamed to that (ElfEdits::rename_undefined), and binds to
// the definition in the copy's own interpreter library (a DT_NEEDED of every copy); the
// names come from the interpreter library's .dynsym, so the loader knows no torch name.
// Libraries that stay process-global are not edited. What the interpreter library does
// with them: Note [One definition per operator] in interpreter/src/registration_gate.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "loader/library_copy.h"
#include "loader/library_resolver.h"

namespace pyfleet::internal {

// Thread-safe. Lock order: InterpreterSlot::mu -> TemplateSlot::mu -> LibraryLoader::mu_.
// mu_ is a leaf held only for map look-ups and counters, as is the resolver's own lock
// (never taken with mu_ held). An InterpreterSlot::mu is held while that interpreter's
// library copy and its dependency copies load (their static constructors run under it),
// a TemplateSlot::mu while its template is built (file I/O and ELF editing only). No lock here is ever held while waiting for a GIL, and none is held
// while an extension copy's own constructors run. Not re-entrant: a static constructor of
// a dependency copy must not call back into loadExtension for the same interpreter.
class LibraryLoader {
 public:
  // LibraryLoader::Create()
  //
  // Creates the private workspace under `temp_root` ("" means
  // LibraryWorkspace::defaultTempRoot()). Errors are LibraryWorkspace::create()'s;
  // InvalidArgument if the path would contain the template placeholder.
  static absl::StatusOr<std::unique_ptr<LibraryLoader>> Create(std::string temp_root = "");

  // Removes the workspace. Loaded copies stay loaded (their files are already gone).
  ~LibraryLoader();
  LibraryLoader(const LibraryLoader&) = delete;
  LibraryLoader& operator=(const LibraryLoader&) = delete;

  // LibraryLoader::loadInterpreterLibrary()
  //
  // Loads interpreter `index`'s private copy of the interpreter library at `path`: a
  // copy with its own inode (glibc dedups by device and inode, so a copy is required),
  // instantiated from a template that drops dependencies already in the global scope,
  // dlopen'ed RTLD_NOW|RTLD_LOCAL. Returns the dlopen handle. Errors:
  // InvalidArgument for an index outside [0, LibraryTemplate::kMaxId], AlreadyExists if
  // `index` has one, NotFound if `path` does not exist, FailedPrecondition with dlerror()'s
  // text if it does not load.
  absl::StatusOr<void*> loadInterpreterLibrary(const std::string& path, int index);

  // LibraryLoader::interpreterLibraryPath()
  //
  // The path string interpreter `index`'s library copy is (or will be) dlopen'ed by.
  // The file is unlinked after loading, but dlopen() of this exact string returns the
  // loaded copy, so ctypes.pythonapi can be re-pointed at it (ARCHITECTURE.md point 10).
  // "" for an index outside [0, LibraryTemplate::kMaxId].
  std::string interpreterLibraryPath(int index) const;

  // LibraryLoader::loadExtension()
  //
  // Loads interpreter `index`'s private copy of the extension module `path` (first making
  // the copies of the Python-dependent libraries it needs, see the file comment). Returns
  // the dlopen handle. Called with that interpreter's GIL held; it never waits for a GIL,
  // only for loader locks (see the lock order). Errors: FailedPrecondition if `index` has
  // no interpreter library loaded or a copy does not load (with dlerror()'s text),
  // NotFound if `path` does not exist, ElfFile::parse errors for a malformed library,
  // Unimplemented for a cycle of Python-dependent libraries.
  absl::StatusOr<void*> loadExtension(const std::string& path, int index);

  // Counters since Create(). A "copy" is any library copy loaded (interpreter library,
  // dependency or extension); copy_seconds covers making its bytes, writing, dlopen
  // (including the copy's static constructors) and unlink. template_seconds covers
  // reading, analysing and patching the source library.
  struct Stats {
    int templates_built = 0;
    double template_seconds = 0;
    int copies_loaded = 0;
    double copy_seconds = 0;
    // Bytes of copies' read-only segments that map the original file's pages instead of
    // their own (Note [Sharing read-only segments with the original file]).
    uint64_t shared_bytes = 0;
    // Symbol relocations turned into R_X86_64_RELATIVE in the templates, so that no copy
    // looks them up (Note [Binding a copy's references to itself]).
    int self_bound_relocations = 0;
  };
  Stats stats() const;

  // The workspace directory (empty except while a copy is being loaded).
  const std::string& workspacePath() const { return workspace_->path(); }

 private:
  struct DependencyRef;
  struct BuiltTemplate;
  struct TemplateSlot;
  struct InterpreterSlot;

  explicit LibraryLoader(std::unique_ptr<LibraryWorkspace> workspace);

  absl::StatusOr<std::shared_ptr<InterpreterSlot>> interpreterSlot(int index) const;
  // The Python-dependent library at canonical `path` as a dependency of copies: its
  // number in this loader (from 1, in order of first use) and its copies' file name.
  DependencyRef dependencyRef(const std::string& path);
  // The template of canonical `path`, built on first use. `dependency` is null for an
  // extension module and for the interpreter library (`interpreter_library` true).
  absl::StatusOr<const BuiltTemplate*> templateFor(const std::string& path,
                                                    const DependencyRef* dependency,
                                                    bool interpreter_library = false);
  absl::StatusOr<BuiltTemplate> buildTemplate(const std::string& path,
                                              const DependencyRef* dependency,
                                              bool interpreter_library);
  // Loads `dependency` (and, first, what it needs) for the interpreter of `slot`, unless
  // it has it. Requires slot.mu; `visiting` holds the ordinals being loaded (cycles).
  absl::Status ensureDependency(InterpreterSlot& slot, int index, const DependencyRef& dependency,
                                std::vector<int>& visiting);
  absl::StatusOr<void*> loadCopy(const BuiltTemplate& built, int index,
                                 const std::string& name_template);
  void addCopyTime(double seconds, uint64_t shared_bytes);

  std::unique_ptr<LibraryWorkspace> workspace_;
  LibraryResolver resolver_;  // thread-safe; its own lock is a leaf
  mutable absl::Mutex mu_;
  absl::flat_hash_map<int, std::shared_ptr<InterpreterSlot>> interpreters_ ABSL_GUARDED_BY(mu_);
  // Keyed by "interp:", "ext:" or "dep:" + canonical path.
  absl::flat_hash_map<std::string, std::shared_ptr<TemplateSlot>> templates_ ABSL_GUARDED_BY(mu_);
  // Canonical path of a Python-dependent library -> its dependency ordinal.
  absl::flat_hash_map<std::string, int> dependency_ordinals_ ABSL_GUARDED_BY(mu_);
  int next_dependency_ordinal_ ABSL_GUARDED_BY(mu_) = 1;
  int next_extension_serial_ ABSL_GUARDED_BY(mu_) = 1;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  // NAMEs the interpreter library defines PYFLEET_REDIRECT_PREFIX + NAME for, read when
  // its template is built. See Note [Redirected references].
  absl::flat_hash_set<std::string> redirected_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pyfleet::internal
