// File: manager_state.cpp — see manager_state.h.
#include "runtime/src/manager_state.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "runtime/src/access.h"
#include "runtime/src/dispatcher.h"
#include "runtime/src/interpreter_core.h"
#include "runtime/src/stub_sources.h"

namespace pyfleet::internal {

ManagerState::ManagerState(size_t n, std::shared_ptr<Environment> env, ManagerOptions options)
    : env_(std::move(env)),
      options_(std::move(options)),
      slots_(new Slot[n]),
      balancer_(n),
      metrics_(n) {}

std::shared_ptr<ManagerState> ManagerState::Create(size_t n, std::shared_ptr<Environment> env,
                                                   ManagerOptions options) {
  if (n == 0) throw Error(absl::InvalidArgumentError("InterpreterManager: at least one interpreter is needed"));
  if (env == nullptr) env = std::make_shared<NoopEnvironment>();
  std::shared_ptr<ManagerState> state(new ManagerState(n, std::move(env), std::move(options)));
  state->modules_.emplace_back("GetArgumentNamesModule", kGetArgumentNamesSource);
  state->start(n);
  for (size_t i = 0; i < n; ++i) {
    InterpreterCore& core = *Access::core(state->interpreters_[i]);
    core.manager_ = state;
    core.position_ = static_cast<int>(i);
  }
  const size_t workers = state->options_.async_workers == 0 ? n : state->options_.async_workers;
  state->dispatcher_ = std::make_shared<Dispatcher>(state.get(), workers, state->options_.max_queue);
  return state;
}

namespace {

// Note [import torch with the cyclic GC off]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// `import torch` creates ~36 MB of Python objects (module dicts, functions, classes) that
// live as long as the interpreter, and CPython's cyclic GC runs collection after
// collection over them while they are made. With the GC off during the import, a later
// interpreter is ready 13-20% sooner (pyfleet-bench-interpreters --startup_only
// --gc_off_during_import=true|false, alternated: 0.44-0.56 s against 0.54-0.68 s on 2
// cores), at no memory cost. gc.freeze() then moves those objects out of the GC's
// generations: they are never garbage, and later full collections (pauses in the middle
// of a model's calls) no longer walk them.
constexpr char kImportTorch[] =
    "import gc\n"
    "gc.disable()\n"
    "try:\n"
    "    import torch\n"
    "finally:\n"
    "    gc.freeze()\n"
    "    gc.enable()\n"
    "del gc\n";

// Runs one of the user's Environment hooks: whatever it throws becomes a pyfleet::Error
// (UNKNOWN, naming the hook and what() of the exception; a pyfleet::Error passes as it
// is), so the manager's constructor throws pyfleet::Error only.
template <typename Hook>
auto RunEnvironmentHook(const char* hook, Hook&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(absl::UnknownError(absl::StrCat("InterpreterManager: Environment::", hook, " threw: ", e.what())));
  } catch (...) {
    throw Error(absl::UnknownError(
        absl::StrCat("InterpreterManager: Environment::", hook, " threw an exception not derived from std::exception")));
  }
}

}  // namespace

void ManagerState::start(size_t n) {
  libraries_ = options_.libraries ? options_.libraries : NativeLibraries::create();
  InterpreterConfig config;
  config.extra_sys_path = RunEnvironmentHook("getExtraPythonPaths", [&] { return env_->getExtraPythonPaths(); });
  // Installed by Interpreter::create, before the `import torch` below.
  config.security_policy = RunEnvironmentHook("securityPolicy", [&] { return env_->securityPolicy(); });
  for (const auto& [name, source] : modules_) config.modules.push_back(ModuleSource{name, source, false});

  // Interpreters start in parallel, as many at once as there are cores: each spends
  // most of its start in its own CPython (own GIL) importing torch.
  std::vector<std::unique_ptr<Interpreter>> started(n);
  std::vector<std::exception_ptr> errors(n);
  std::atomic<size_t> next{0};
  auto starter = [&] {
    for (size_t i = next++; i < n; i = next++) {
      try {
        std::unique_ptr<Interpreter> interp = Interpreter::create(libraries_, config);
        interp->run(kImportTorch, "<pyfleet manager start>");
        RunEnvironmentHook("configureInterpreter", [&] { env_->configureInterpreter(interp.get()); });
        interp->detachThread();  // this thread ends here
        started[i] = std::move(interp);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  const size_t threads = std::min<size_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) pool.emplace_back(starter);
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);  // `started` finalizes the others on the way out
  }
  // Positions follow creation indexes, whatever order the threads finished in.
  std::sort(started.begin(), started.end(),
            [](const auto& a, const auto& b) { return a->index() < b->index(); });
  interpreters_.reserve(n);
  for (std::unique_ptr<Interpreter>& interp : started) interpreters_.push_back(std::move(*interp));
}

ManagerState::~ManagerState() {
  shutdownDispatcher();
  // Importers first: they are Objs of the interpreters about to be finalized.
  for (size_t i = 0; i < interpreters_.size(); ++i) {
    absl::MutexLock lock(&slots_[i].mu);
    slots_[i].importers.clear();
  }
}

int ManagerState::positionOf(const InterpreterCore* core) const {
  for (size_t i = 0; i < interpreters_.size(); ++i) {
    if (Access::core(interpreters_[i]).get() == core) return static_cast<int>(i);
  }
  return -1;
}

std::shared_ptr<Dispatcher> ManagerState::dispatcher() const {
  absl::MutexLock lock(&dispatcher_mu_);
  return dispatcher_;
}

void ManagerState::shutdownDispatcher() {
  std::shared_ptr<Dispatcher> dispatcher;
  {
    absl::MutexLock lock(&dispatcher_mu_);
    dispatcher = std::move(dispatcher_);
  }
  if (dispatcher != nullptr) dispatcher->shutdown();
}

Obj ManagerState::importer(int position, const std::shared_ptr<const PackageArchive>& archive) {
  Slot& slot = slots_[position];
  absl::MutexLock lock(&slot.mu);  // held while the importer is made: one per archive
  auto it = slot.importers.find(archive.get());
  if (it != slot.importers.end()) return it->second.second;
  Obj importer = interpreters_[position].packageImporter(Access::makePackage(archive));
  slot.importers.emplace(archive.get(), std::make_pair(archive, importer));
  return importer;
}

std::vector<std::pair<std::shared_ptr<const PackageArchive>, Obj>> ManagerState::importers(int position) {
  Slot& slot = slots_[position];
  absl::MutexLock lock(&slot.mu);
  std::vector<std::pair<std::shared_ptr<const PackageArchive>, Obj>> out;
  for (const auto& entry : slot.importers) out.push_back(entry.second);
  return out;
}

void ManagerState::registerModuleSource(std::string name, std::string source) {
  absl::MutexLock lock(&modules_mu_);  // registrations reach every interpreter in order
  for (Interpreter& interp : interpreters_) {
    interp.global("_pyfleet_bootstrap", "register_module").call({Value(name), Value(source), Value(false)});
  }
  auto it = std::find_if(modules_.begin(), modules_.end(), [&](const auto& m) { return m.first == name; });
  if (it != modules_.end()) {
    it->second = std::move(source);
  } else {
    modules_.emplace_back(std::move(name), std::move(source));
  }
}

size_t ManagerState::countRegisteredModuleSources() const {
  absl::MutexLock lock(&modules_mu_);
  return modules_.size();
}

}  // namespace pyfleet::internal
