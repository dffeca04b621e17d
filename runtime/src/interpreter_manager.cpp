// File: interpreter_manager.cpp — pyfleet::InterpreterManager (interpreter_manager.h).
#include "pyfleet/interpreter_manager.h"

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "runtime/src/access.h"
#include "runtime/src/interpreter_core.h"
#include "runtime/src/manager_state.h"
#include "runtime/src/package_registry.h"

namespace pyfleet {

using internal::Access;

InterpreterManager::InterpreterManager(size_t n, std::shared_ptr<Environment> env, ManagerOptions options)
    : state_(internal::ManagerState::Create(n, std::move(env), std::move(options))) {}

InterpreterManager::~InterpreterManager() {
  // Workers hold raw pointers to the state: stop them while it surely lives. What else
  // holds the state (Packages, ReplicatedObjs) keeps the interpreters alive after this.
  state_->shutdownDispatcher();
}

InterpreterSession InterpreterManager::acquireOne() {
  const int position = state_->balancer().acquire();
  return Access::makeSession(state_, &state_->interpreter(position), position);
}

at::ArrayRef<Interpreter> InterpreterManager::allInstances() { return at::ArrayRef<Interpreter>(state_->interpreters()); }

size_t InterpreterManager::size() const { return state_->size(); }

void InterpreterManager::debugLimitInterpreters(size_t n) {
  if (n == 0 || n > state_->size()) {
    throw Error(absl::InvalidArgumentError(
        absl::StrCat("debugLimitInterpreters(", n, "): the manager has ", state_->size(), " interpreters")));
  }
  state_->balancer().setLimit(n);
}

Package InterpreterManager::loadPackage(const std::string& path) { return loadPackage(path, PackageOptions{}); }

Package InterpreterManager::loadPackage(const std::string& path, const PackageOptions& options) {
  absl::StatusOr<std::shared_ptr<const internal::PackageArchive>> archive =
      internal::OpenSharedArchive(path, options.sha256);
  ThrowIfError(archive.status());
  return Access::makePackage(std::move(archive).value(), state_);
}

void InterpreterManager::registerModuleSource(std::string name, std::string src) {
  state_->registerModuleSource(std::move(name), std::move(src));
}

size_t InterpreterManager::countRegisteredModuleSources() const { return state_->countRegisteredModuleSources(); }

ReplicatedObj InterpreterManager::createMovable(Obj obj, InterpreterSession* session) {
  if (session == nullptr) throw Error(absl::InvalidArgumentError("createMovable: the session is null"));
  if (Access::manager(*session) != state_) {
    throw Error(absl::InvalidArgumentError("createMovable: the session belongs to another InterpreterManager"));
  }
  return session->createMovable(std::move(obj));
}

Metrics InterpreterManager::metrics() const { return state_->metrics().snapshot(state_->balancer()); }

}  // namespace pyfleet
