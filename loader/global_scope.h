// File: global_scope.h
//
// Probes of this process's global scope: the main program, its dependencies and
// everything dlopen'ed RTLD_GLOBAL, which is what an RTLD_LOCAL library copy searches
// first for every symbol it needs. LibraryLoader asks them while it builds a template:
// which DT_NEEDED entries a copy can drop (Note [Dependencies already in the global
// scope]) and which of its own references cannot be interposed (Note [Binding a copy's
// references to itself], self_binding.h).
//
//   PYFLEET_ASSIGN_OR_RETURN(std::optional<ResolvedLibrary> lib,
//                            resolver.resolveNeeded("libc10.so.1.13", dirs));
//   PYFLEET_ASSIGN_OR_RETURN(bool global, inGlobalScope("libc10.so.1.13", lib->info, resolver));
//   if (global) edits.remove_needed.push_back("libc10.so.1.13");
//   bool interposed = definedInGlobalScope("_ZN3c1019UndefinedTensorImpl10_singletonE");
//
// Every probe reads the process as it is when called; what is loaded later (a host that
// dlopens something RTLD_GLOBAL afterwards) does not change answers already used.
// Thread-safe (dlopen/dlsym take glibc's own locks).
//
// Note [Dependencies already in the global scope]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Every dlopen walks the new object's whole dependency tree, and for each DT_NEEDED in it
// glibc's _dl_map_object compares the name with every loaded object's names (strcmp).
// libtorch_python's tree is LibTorch's: some 300 libraries on Debian (opencv, gdal, ...),
// against 330 loaded objects plus 26 more per interpreter; that was about 6% of a later
// interpreter's start-up. Yet a copy is RTLD_LOCAL, so glibc looks every symbol up in the
// global scope first: a dependency that is already there (the host links LibTorch, so
// libtorch_cpu, libc10, libstdc++ ... are) can never supply a binding through the copy's
// own scope. Its DT_NEEDED is therefore dropped from the template (library_loader.cpp),
// and the copy's tree holds only what is not global: the interpreter copy, other copies,
// libraries like libshm. Its DT_VERNEED entries stay; glibc finds those libraries among
// the loaded objects by name (the dlopen(RTLD_NOLOAD) in loadedInGlobalScope() makes sure
// the name is known). "In the global scope" is checked, not assumed: the library answers
// dlopen(name, RTLD_NOLOAD), and dlsym on the global scope (globalScopeHandle()) of one of
// its exported symbols lands in it. A library that defines nothing at all
// (libtorch.so.1.13 only pulls in libtorch_cpu and others) can bind nothing itself: it
// counts as global when it is loaded and everything it needs is global. The dlopen by
// name cannot be answered by one of our own copies: no copy is known by any name but its
// own workspace path (Note [A copy is known only by its own path], library_copy.h).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "loader/library_resolver.h"

namespace pyfleet::internal {

// globalScopeHandle()
//
// The dlopen(NULL) handle: dlsym() on it searches exactly the global scope. Never closed.
void* globalScopeHandle();

// definedInGlobalScope()
//
// Whether some object in the global scope defines `name` (also one whose value is 0).
// The predicate LibraryLoader uses with bindSelfReferences().
bool definedInGlobalScope(const char* name);

// loadedInGlobalScope()
//
// Whether the object that dlopen(`needed_name`, RTLD_NOLOAD) finds (as a DT_NEEDED of
// that name would) is loaded and is where the global scope finds `exported_symbol`, one
// of its exports (LibraryInfo::exported_symbol). False if either is missing or empty.
bool loadedInGlobalScope(const std::string& needed_name, const std::string& exported_symbol);

// inGlobalScope()
//
// Whether the library that DT_NEEDED `name` loads, described by `info`, is in the global
// scope (see the Note): loadedInGlobalScope() with its export; for one that defines no
// symbol at all, whether it is loaded and every one of its own DT_NEEDED (resolved with
// `resolver`) is; false for one whose definitions are all unprobeable (weak, TLS, ...).
// Errors: `resolver`'s I/O errors.
absl::StatusOr<bool> inGlobalScope(const std::string& name, const LibraryInfo& info,
                                   LibraryResolver& resolver);

}  // namespace pyfleet::internal
