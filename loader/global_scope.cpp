// Probes of the process's global scope; see global_scope.h.
#include "loader/global_scope.h"

#include <dlfcn.h>
#include <link.h>

#include "absl/cleanup/cleanup.h"
#include "loader/base/status_macros.h"

namespace pyfleet::internal {

void* globalScopeHandle() {
  // dlopen(NULL) is the main program; glibc searches its symbol list, which RTLD_GLOBAL
  // loads extend, for dlsym on it: exactly the global scope. (dlsym(RTLD_DEFAULT) would
  // also search the calling library's own dependencies when it was dlopen'ed RTLD_LOCAL.)
  static void* const handle = ::dlopen(nullptr, RTLD_LAZY);
  return handle;
}

bool definedInGlobalScope(const char* name) {
  ::dlerror();  // clear, so a symbol whose value is 0 is told apart from a missing one
  void* address = ::dlsym(globalScopeHandle(), name);
  return address != nullptr || ::dlerror() == nullptr;
}

bool loadedInGlobalScope(const std::string& needed_name, const std::string& exported_symbol) {
  if (needed_name.empty() || exported_symbol.empty()) return false;
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

absl::StatusOr<bool> inGlobalScope(const std::string& name, const LibraryInfo& info,
                                   LibraryResolver& resolver) {
  if (!info.exported_symbol.empty()) return loadedInGlobalScope(name, info.exported_symbol);
  // Definitions but none to probe with (all weak, TLS, ...): keep it.
  if (info.defines_symbols) return false;
  // One that defines nothing can bind nothing itself: global when loaded and all it
  // needs is global.
  void* handle = ::dlopen(name.c_str(), RTLD_NOLOAD | RTLD_LAZY);
  if (handle == nullptr) return false;
  ::dlclose(handle);
  if (info.needed.empty()) return false;
  for (const std::string& dependency : info.needed) {
    PYFLEET_ASSIGN_OR_RETURN(std::optional<ResolvedLibrary> resolved,
                             resolver.resolveNeeded(dependency, info.search_dirs));
    if (!resolved || resolved->info.exported_symbol.empty() ||
        !loadedInGlobalScope(dependency, resolved->info.exported_symbol)) {
      return false;
    }
  }
  return true;
}

}  // namespace pyfleet::internal
