// File: interpreter.cpp
//
// pyfleet::Interpreter (interpreter.h) over the interpreter library's C ABI: loading a
// private library copy, checking its ABI table, creating its CPython, and the entries
// that work on the interpreter as a whole.
#include "pyfleet/interpreter.h"

#include <dlfcn.h>

#include <ATen/core/ivalue.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "loader/base/pyfleet_status.h"
#include "loader/library_loader.h"
#include "interpreter/archive/archive_abi.h"
#include "runtime/src/abi_status.h"
#include "runtime/src/access.h"
#include "runtime/src/interpreter_core.h"
#include "runtime/src/manager_state.h"
#include "runtime/src/value_bridge.h"

namespace pyfleet {
namespace internal {
namespace {

// PyfleetExtensionLoader.load: called by the interpreter with its GIL held, from inside
// CPython's import machinery, so nothing may unwind out of it (a std::bad_alloc
// included): every failure is an error message.
void* LoadExtension(void* ctx, const char* path, char** error) noexcept {
  try {
    auto* c = static_cast<ExtensionLoaderContext*>(ctx);
    absl::StatusOr<void*> handle = c->loader->loadExtension(path, c->index);
    if (!handle.ok()) {
      absl::string_view message = handle.status().message();
      *error = DupCString(std::string_view(message.data(), message.size()));
      return nullptr;
    }
    return *handle;
  } catch (const std::exception& e) {
    *error = DupCString(std::string("pyfleet: loading an extension failed: ") + e.what());
  } catch (...) {
    *error = DupCString("pyfleet: loading an extension failed with an unknown C++ exception");
  }
  return nullptr;
}

// pyfleet.install_security_policy(...) in `interp` (interpreter/importer/security_policy.cpp):
// the policy lives in the interpreter, where CPython's audit hooks are. If this throws,
// ~Interpreter finalizes the interpreter, so none runs without the policy it asked for.
void InstallSecurityPolicy(Interpreter& interp, const SecurityPolicy& policy) {
  std::unordered_map<std::string, c10::IValue> kwargs = {
      {"allow_processes", c10::IValue(policy.allow_processes)},
      {"allow_network", c10::IValue(policy.allow_network)},
      {"allow_file_writes", c10::IValue(policy.allow_file_writes)},
  };
  if (policy.allowed_extern_modules.has_value()) {
    c10::List<std::string> modules;
    for (const std::string& m : *policy.allowed_extern_modules) modules.push_back(m);
    kwargs.emplace("allowed_extern_modules", c10::IValue(modules));
  }
  interp.global("pyfleet", "install_security_policy").callKwargs(std::move(kwargs));
}

}  // namespace

}  // namespace internal

// ---- Interpreter -------------------------------------------------------------------

std::unique_ptr<Interpreter> Interpreter::create(std::shared_ptr<NativeLibraries> libraries,
                                                 const InterpreterConfig& config) {
  if (!libraries) throw Error(absl::InvalidArgumentError("Interpreter::create: libraries is null"));
  const int index = internal::Access::allocateIndex(*libraries);
  auto core = std::make_shared<internal::InterpreterCore>(libraries, index);
  internal::LibraryLoader& loader = internal::Access::loader(*libraries);
  absl::StatusOr<void*> handle = loader.loadInterpreterLibrary(libraries->interpreterLibrary(), index);
  ThrowIfError(handle.status());
  auto abi_fn = reinterpret_cast<PyfleetInterpreterAbiFn>(dlsym(*handle, PYFLEET_INTERPRETER_ABI_SYMBOL));
  if (abi_fn == nullptr) {
    const char* err = dlerror();
    throw Error(absl::FailedPreconditionError(absl::StrCat(libraries->interpreterLibrary(), ": no symbol ",
                                                           PYFLEET_INTERPRETER_ABI_SYMBOL, ": ",
                                                           err ? err : "?")));
  }
  const PyfleetInterpreterAbi* abi = abi_fn();
  if (abi == nullptr || abi->abi_version != PYFLEET_INTERPRETER_ABI_VERSION ||
      abi->struct_size < sizeof(PyfleetInterpreterAbi)) {
    throw Error(absl::FailedPreconditionError(absl::StrCat(
        libraries->interpreterLibrary(), ": interpreter ABI version ", abi ? abi->abi_version : 0, " (table of ",
        abi ? abi->struct_size : 0, " bytes), host expects version ", PYFLEET_INTERPRETER_ABI_VERSION, " (",
        sizeof(PyfleetInterpreterAbi), " bytes)")));
  }
  core->abi_ = abi;
  core->loader_context_ = internal::ExtensionLoaderContext{&loader, index};

  std::vector<std::string> sys_path = config.sys_path.empty() ? DefaultSysPath() : config.sys_path;
  sys_path.insert(sys_path.end(), config.extra_sys_path.begin(), config.extra_sys_path.end());
  std::vector<const char*> path_ptrs;
  for (const std::string& p : sys_path) path_ptrs.push_back(p.c_str());
  std::vector<PyfleetModuleSource> modules;
  for (const ModuleSource& m : config.modules) {
    modules.push_back(PyfleetModuleSource{m.name.c_str(), m.source.c_str(), m.is_package ? 1 : 0});
  }
  PyfleetInterpConfig abi_config{};
  abi_config.struct_size = sizeof(PyfleetInterpConfig);
  abi_config.index = index;
  abi_config.sys_path = path_ptrs.data();
  abi_config.sys_path_len = path_ptrs.size();
  abi_config.modules = modules.data();
  abi_config.modules_len = modules.size();
  abi_config.extension_loader = PyfleetExtensionLoader{&core->loader_context_, internal::LoadExtension};
  abi_config.python_allocator = config.python_allocator == PythonAllocator::kMalloc ? PYFLEET_PYTHON_ALLOCATOR_MALLOC
                                                                                    : PYFLEET_PYTHON_ALLOCATOR_DEFAULT;
  ThrowIfError(core->take(abi->create(&abi_config, &core->interp_)));
  std::unique_ptr<Interpreter> interp = internal::Access::makeInterpreter(std::move(core));
  if (config.security_policy.has_value()) internal::InstallSecurityPolicy(*interp, *config.security_policy);
  return interp;
}

Interpreter::~Interpreter() {
  if (core_ && core_->interp() != nullptr) {
    // Errors cannot be thrown from here; a failed finalize leaves the copy inert anyway.
    core_->abi()->status_free(core_->abi()->finalize(core_->interp()));
  }
}

int Interpreter::index() const { return core_->index(); }

void Interpreter::run(std::string_view code, std::string_view filename) {
  std::string c(code), f(filename);
  ThrowIfError(core_->take(core_->abi()->run(core_->interp(), c.c_str(), f.c_str())));
}

Obj Interpreter::eval(std::string_view expression) {
  std::string e(expression);
  PyfleetObj* out = nullptr;
  ThrowIfError(core_->take(core_->abi()->eval(core_->interp(), e.c_str(), &out)));
  return internal::Access::makeObj(core_, out);
}

Obj Interpreter::import(std::string_view module) {
  std::string m(module);
  PyfleetObj* out = nullptr;
  ThrowIfError(core_->take(core_->abi()->import_module(core_->interp(), m.c_str(), &out)));
  return internal::Access::makeObj(core_, out);
}

Obj Interpreter::global(std::string_view module, std::string_view name) { return import(module).attr(name); }

Obj Interpreter::toObj(const Value& value) {
  PyfleetValue v = internal::ToAbiValue(*core_, value);
  PyfleetObj* out = nullptr;
  ThrowIfError(core_->take(core_->abi()->from_value(core_->interp(), &v, &out)));
  return internal::Access::makeObj(core_, out);
}

Obj Interpreter::packageImporter(const Package& package) {
  PyfleetArchive archive = internal::MakeArchiveAbi(internal::Access::archive(package));  // holds one reference
  PyfleetObj* out = nullptr;
  PyfleetStatus* status = core_->abi()->make_package_importer(core_->interp(), &archive, &out);
  archive.release(archive.ctx);  // the importer retained its own
  ThrowIfError(core_->take(status));
  return internal::Access::makeObj(core_, out);
}

void Interpreter::detachThread() { core_->abi()->detach_thread(core_->interp()); }

InterpreterSession Interpreter::acquireSession() const {
  // Not counted by the load balancer (torch::deploy's Interpreter::acquireSession isn't).
  return internal::Access::makeSession(core_->manager_.lock(), const_cast<Interpreter*>(this), -1);
}

}  // namespace pyfleet
