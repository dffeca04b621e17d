// File: replicated_obj_impl.h
//
// ReplicatedObjImpl: what a pyfleet::ReplicatedObj shares between its copies: how to
// make the object in an interpreter (its recipe), and each interpreter's copy once made.
//
//   auto impl = std::make_shared<ReplicatedObjImpl>(manager, FromPackage{archive, "model", "model.pkl"});
//   c10::IValue y = impl->call(position, args.data(), args.size(), nullptr);
//
// Two recipes: FromPackage loads the object with the interpreter's importer of the
// package (its storages alias the package mapping); FromPickle unpickles what
// createMovable() pickled once (Note [Moving objects between interpreters] in
// stubs/_pyfleet_movable.py). Thread-safe. Lock order: Slot::mu -> ManagerState's
// locks -> an interpreter's GIL.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "pyfleet/obj.h"

namespace pyfleet::internal {

class ManagerState;
class PackageArchive;

struct FromPackage {
  std::shared_ptr<const PackageArchive> archive;
  std::string module;
  std::string file;
  // load_pickle(..., safe=True, allowed_globals=...) (pyfleet::LoadOptions).
  bool safe = false;
  std::vector<std::string> allowed_globals;
};

struct FromPickle {
  std::string data;                      // the pickle
  std::vector<at::Tensor> storages;      // uint8 views of each storage, shared by every copy
  std::vector<std::string> dtypes;       // "float32", ... per storage
  std::vector<std::shared_ptr<const PackageArchive>> packages;  // whose importers name classes
};

class ReplicatedObjImpl {
 public:
  using Recipe = std::variant<FromPackage, FromPickle>;

  ReplicatedObjImpl(std::shared_ptr<ManagerState> manager, Recipe recipe);
  ~ReplicatedObjImpl();

  ManagerState& manager() const { return *manager_; }
  const std::shared_ptr<ManagerState>& sharedManager() const { return manager_; }

  // ReplicatedObjImpl::copy()
  //
  // Interpreter `position`'s copy, made on first use (once, whatever the concurrency).
  std::shared_ptr<const Obj> copy(int position) const;

  // self(*args, **kwargs) with the copy on `position`, converted in one crossing.
  c10::IValue call(int position, const c10::IValue* args, size_t nargs,
                   const std::unordered_map<std::string, c10::IValue>* kwargs) const;

  // Drops the copy on `position` (-1: on every interpreter).
  void unload(int position);

  size_t materializations() const { return materializations_.load(std::memory_order_relaxed); }
  size_t loadedCopies() const;

 private:
  Obj materialize(int position) const;

  struct alignas(64) Slot {
    mutable absl::Mutex mu;
    std::shared_ptr<const Obj> obj ABSL_GUARDED_BY(mu);
  };

  std::shared_ptr<ManagerState> manager_;
  Recipe recipe_;
  std::unique_ptr<Slot[]> slots_;
  mutable std::atomic<size_t> materializations_{0};
};

// Pickles `obj` (which lives in interpreter `position` of `manager`) for replication.
FromPickle PickleForReplication(ManagerState& manager, int position, const Obj& obj);

}  // namespace pyfleet::internal
