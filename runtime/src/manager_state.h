// File: manager_state.h
//
// ManagerState: everything an InterpreterManager stands for, shared (std::shared_ptr)
// by the manager handle and by what must outlive it: Packages, ReplicatedObjs, sessions.
// It owns the interpreters, the load balancer, the metrics and the asynchronous
// dispatcher, and caches each interpreter's importer of each package.
//
//   std::shared_ptr<ManagerState> state = ManagerState::Create(4, env, options);
//   int where = state->balancer().acquire();
//   Obj importer = state->importer(where, archive);
//   state->balancer().release(where);
//
// Lock order: ManagerState::modules_mu_ -> Slot::mu -> an interpreter's GIL. No host
// lock is ever taken while holding a GIL (host code never holds one across host code).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "pyfleet/environment.h"
#include "pyfleet/interpreter.h"
#include "pyfleet/interpreter_manager.h"
#include "pyfleet/obj.h"
#include "runtime/src/load_balancer.h"
#include "runtime/src/metrics_recorder.h"

namespace pyfleet::internal {

class Dispatcher;
class InterpreterCore;
class PackageArchive;

class ManagerState : public std::enable_shared_from_this<ManagerState> {
 public:
  // Starts `n` interpreters in parallel (see InterpreterManager's constructor).
  static std::shared_ptr<ManagerState> Create(size_t n, std::shared_ptr<Environment> env, ManagerOptions options);
  ~ManagerState();

  size_t size() const { return interpreters_.size(); }
  Interpreter& interpreter(int position) { return interpreters_[position]; }
  std::vector<Interpreter>& interpreters() { return interpreters_; }
  // The position of `core`'s interpreter in this manager, or -1.
  int positionOf(const InterpreterCore* core) const;

  LoadBalancer& balancer() { return balancer_; }
  MetricsRecorder& metrics() { return metrics_; }
  const ManagerOptions& options() const { return options_; }

  // The dispatcher of asynchronous calls; nullptr once the manager handle is gone.
  std::shared_ptr<Dispatcher> dispatcher() const;
  // Stops the dispatcher (queued calls fail with CANCELLED, running ones finish).
  void shutdownDispatcher();

  // ManagerState::importer()
  //
  // Interpreter `position`'s importer of `archive` (made on first use, then cached).
  Obj importer(int position, const std::shared_ptr<const PackageArchive>& archive);
  // Every importer interpreter `position` has now, with its archive.
  std::vector<std::pair<std::shared_ptr<const PackageArchive>, Obj>> importers(int position);

  void registerModuleSource(std::string name, std::string source);
  size_t countRegisteredModuleSources() const;

 private:
  // One interpreter's host-side state.
  struct Slot {
    absl::Mutex mu;
    // By archive: the importer, and the archive kept alive with it.
    absl::flat_hash_map<const PackageArchive*, std::pair<std::shared_ptr<const PackageArchive>, Obj>> importers
        ABSL_GUARDED_BY(mu);
  };

  ManagerState(size_t n, std::shared_ptr<Environment> env, ManagerOptions options);
  void start(size_t n);

  std::shared_ptr<Environment> env_;
  ManagerOptions options_;
  std::shared_ptr<NativeLibraries> libraries_;
  std::vector<Interpreter> interpreters_;  // fixed after start(): never reallocated
  std::unique_ptr<Slot[]> slots_;
  LoadBalancer balancer_;
  MetricsRecorder metrics_;

  mutable absl::Mutex modules_mu_;
  std::vector<std::pair<std::string, std::string>> modules_ ABSL_GUARDED_BY(modules_mu_);

  mutable absl::Mutex dispatcher_mu_;
  std::shared_ptr<Dispatcher> dispatcher_ ABSL_GUARDED_BY(dispatcher_mu_);
};

}  // namespace pyfleet::internal
