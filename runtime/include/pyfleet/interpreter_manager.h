// File: interpreter_manager.h
//
// pyfleet::InterpreterManager: N interpreters in this process, each with its own GIL,
// sharing one LibTorch, and the load balancer, the asynchronous queue and the metrics
// that spread calls over them. What users link into serving binaries; the names are
// torch::deploy's (see <pyfleet/torch_deploy.h> to move over).
//
//   pyfleet::InterpreterManager manager(4);                       // starts 4, in parallel
//   pyfleet::Package package = manager.loadPackage("model.pt");   // one mapping per file
//   pyfleet::ReplicatedObj model = package.loadPickle("model", "model.pkl");
//   // from any thread:
//   at::Tensor y = model({x}).toTensor();
//   std::future<c10::IValue> f = model.submit({x}, {std::chrono::milliseconds(50)});
//   pyfleet::Metrics m = manager.metrics();
//
// Note [Load balancing]
// ~~~~~~~~~~~~~~~~~~~~~
// acquireOne() counts sessions per interpreter in counters padded to a cache line each
// (no false sharing) and takes no lock: it first tries the interpreter the calling
// thread used last (its objects are warm there, and torch::deploy code relies on
// getting the same one back), then any free one, then, when all are busy, the least
// loaded. Interpreters out of rotation (Note [Deadlines and interruption]) are skipped
// while any other is usable.
//
// Lifetime: the manager's interpreters live until the manager and everything that keeps
// them alive (Packages, ReplicatedObjs, sessions, Objs) are gone; then each is finalized.
// Destroying the manager stops its asynchronous workers: queued calls fail with
// CANCELLED, running ones finish first.
#pragma once

#include <c10/util/ArrayRef.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "pyfleet/environment.h"
#include "pyfleet/export.h"
#include "pyfleet/interpreter.h"
#include "pyfleet/interpreter_session.h"
#include "pyfleet/metrics.h"
#include "pyfleet/native_libraries.h"
#include "pyfleet/obj.h"
#include "pyfleet/package.h"
#include "pyfleet/replicated_obj.h"

namespace pyfleet {

namespace internal {
class ManagerState;
}  // namespace internal

struct ManagerOptions {
  // Asynchronous calls (ReplicatedObj::submit) waiting for an interpreter beyond this
  // many are refused with RESOURCE_EXHAUSTED.
  size_t max_queue = 1024;
  // Threads running asynchronous calls; 0 means one per interpreter.
  size_t async_workers = 0;
  // A call interrupted (deadline, cancellation) that has not returned this long after
  // takes its interpreter out of rotation until it does.
  std::chrono::milliseconds stuck_after{100};
  // Shared machinery for library copies; null makes one for this manager. Pass one
  // NativeLibraries to several managers to patch libraries once per process.
  std::shared_ptr<NativeLibraries> libraries;
};

class PYFLEET_API InterpreterManager {
 public:
  // InterpreterManager::InterpreterManager()
  //
  // Starts `n` interpreters (in parallel, as many at once as there are cores), each with
  // torch imported, `env`'s paths on sys.path and `env`'s configureInterpreter() run.
  // Throws pyfleet::Error if one fails to start (the others are shut down).
  explicit InterpreterManager(size_t n = 2,
                              std::shared_ptr<Environment> env = std::make_shared<NoopEnvironment>(),
                              ManagerOptions options = {});
  ~InterpreterManager();
  InterpreterManager(const InterpreterManager&) = delete;
  InterpreterManager& operator=(const InterpreterManager&) = delete;

  // InterpreterManager::acquireOne()
  //
  // A session on a free interpreter, else the least loaded (Note [Load balancing]).
  InterpreterSession acquireOne();

  // InterpreterManager::allInstances()
  //
  // The interpreters, in order; the same objects for the manager's whole life.
  at::ArrayRef<Interpreter> allInstances();

  // InterpreterManager::size()
  size_t size() const;

  // InterpreterManager::debugLimitInterpreters()
  //
  // Lets acquireOne() use only the first `n` interpreters (tests); INVALID_ARGUMENT if
  // `n` is 0 or above size().
  void debugLimitInterpreters(size_t n);

  // InterpreterManager::loadPackage()
  //
  // Opens the torch.package archive at `path`. One archive per file per process: a path
  // (or another path to the same unchanged file) loaded again, by this manager or
  // another, shares the first one's mapping. Errors as Package::open.
  Package loadPackage(const std::string& path);
  // The same, pinned to `options.sha256` if set (PackageOptions): a file already open
  // is checked too, against the digest cached with its archive.
  Package loadPackage(const std::string& path, const PackageOptions& options);

  // InterpreterManager::registerModuleSource()
  //
  // Makes `src` importable as module `name` in every interpreter of the manager, at once
  // (a module already imported under that name is not replaced). Registering the same
  // name again replaces the source for later imports.
  void registerModuleSource(std::string name, std::string src);
  // How many module sources are registered, GetArgumentNamesModule (which
  // PythonMethodWrapper uses, registered by the manager itself) included.
  size_t countRegisteredModuleSources() const;

  // InterpreterManager::createMovable()
  //
  // `obj` (which must live in `session`'s interpreter: INVALID_ARGUMENT naming both
  // otherwise) replicated to every interpreter: pickled once, with its tensor storages
  // kept aside and shared by every copy, never copied.
  ReplicatedObj createMovable(Obj obj, InterpreterSession* session);

  // InterpreterManager::metrics()
  //
  // A snapshot of the calls made so far (see metrics.h).
  Metrics metrics() const;

 private:
  std::shared_ptr<internal::ManagerState> state_;
};

}  // namespace pyfleet
