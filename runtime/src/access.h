// File: access.h
//
// internal::Access: the one friend of the public types, through which the rest of the
// runtime reaches what they keep private (the ABI handle of an Obj, an Interpreter's
// core, a Package's archive, NativeLibraries' loader). Public headers stay free of
// "internal, do not use" members, and every reach inside goes through one place.
//
//   const auto& archive = internal::Access::archive(package);
//   PyfleetObj* handle = internal::Access::handle(obj);
#pragma once

#include <memory>
#include <utility>

#include "pyfleet/interpreter.h"
#include "pyfleet/interpreter_abi.h"
#include "pyfleet/native_libraries.h"
#include "pyfleet/obj.h"
#include "pyfleet/interpreter_session.h"
#include "pyfleet/package.h"
#include "pyfleet/replicated_obj.h"

namespace pyfleet::internal {

class InterpreterCore;
class LibraryLoader;
class ManagerState;
class PackageArchive;
class ReplicatedObjImpl;

struct Access {
  // NativeLibraries
  static LibraryLoader& loader(NativeLibraries& libraries) { return *libraries.loader_; }
  // A process-unique interpreter index (0, 1, 2, ... in creation order).
  static int allocateIndex(NativeLibraries& libraries) { return libraries.next_index_.fetch_add(1); }

  // Obj
  static PyfleetObj* handle(const Obj& obj) { return static_cast<PyfleetObj*>(obj.obj_); }
  static const std::shared_ptr<InterpreterCore>& core(const Obj& obj) { return obj.core_; }
  // Takes ownership of `handle` (a new reference of `core`'s interpreter).
  static Obj makeObj(std::shared_ptr<InterpreterCore> core, PyfleetObj* handle) {
    return Obj(std::move(core), handle);
  }

  // Interpreter
  static const std::shared_ptr<InterpreterCore>& core(const Interpreter& interp) { return interp.core_; }
  static std::unique_ptr<Interpreter> makeInterpreter(std::shared_ptr<InterpreterCore> core) {
    return std::unique_ptr<Interpreter>(new Interpreter(std::move(core)));
  }

  // InterpreterSession (`balancer_slot` -1: not counted by the load balancer)
  static InterpreterSession makeSession(std::shared_ptr<ManagerState> manager, Interpreter* interpreter,
                                        int balancer_slot) {
    return InterpreterSession(std::move(manager), interpreter, balancer_slot);
  }
  static const std::shared_ptr<ManagerState>& manager(const InterpreterSession& session) { return session.manager_; }

  // ReplicatedObj
  static ReplicatedObj makeReplicated(std::shared_ptr<ReplicatedObjImpl> impl) { return ReplicatedObj(std::move(impl)); }
  static const std::shared_ptr<ReplicatedObjImpl>& impl(const ReplicatedObj& obj) { return obj.impl_; }

  // Package
  static const std::shared_ptr<const PackageArchive>& archive(const Package& package) { return package.archive_; }
  static Package makePackage(std::shared_ptr<const PackageArchive> archive,
                             std::shared_ptr<ManagerState> manager = nullptr) {
    return Package(std::move(archive), std::move(manager));
  }
};

}  // namespace pyfleet::internal
