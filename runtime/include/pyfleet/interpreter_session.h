// File: interpreter_session.h
//
// pyfleet::InterpreterSession: a lease on one interpreter of a manager, as torch::deploy
// has it. The load balancer counts the interpreter busy while the session lives, and a
// thread that comes back gets the same interpreter again (its objects are warm there).
//
//   pyfleet::InterpreterSession s = manager.acquireOne();
//   pyfleet::Obj sum = s.global("builtins", "sum")({s.fromIValue(c10::List<int64_t>({1, 2}))});
//   int64_t three = sum.toIValue().toInt();
//   pyfleet::Obj model = s.fromMovable(replicated);   // the interpreter's copy
//
// Note [Sessions do not hold the GIL]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// torch::deploy's session held its interpreter's GIL for its whole life, so several calls
// in one session paid for one GIL hand-off. pyfleet's session does not: each call takes
// the GIL (with the calling thread's persistent thread state, ~0.1 us uncontended) and
// gives it back. A session forgotten on one thread then cannot block every other thread
// of that interpreter, a call past its deadline can be interrupted from another thread,
// and two sessions on one interpreter in one thread are never a deadlock. Sessions are
// what the load balancer counts, not locks: two threads may hold sessions on the same
// interpreter (when all are busy), and their calls take turns on its GIL.
#pragma once

#include <memory>

#include "pyfleet/export.h"
#include "pyfleet/obj.h"

namespace pyfleet {

class Interpreter;
class ReplicatedObj;

namespace internal {
class ManagerState;
}  // namespace internal

class PYFLEET_API InterpreterSession {
 public:
  InterpreterSession(InterpreterSession&& other) noexcept;
  InterpreterSession& operator=(InterpreterSession&& other) noexcept;
  InterpreterSession(const InterpreterSession&) = delete;
  InterpreterSession& operator=(const InterpreterSession&) = delete;
  // Gives the interpreter back to the load balancer. Objs of the session stay valid.
  ~InterpreterSession();

  // The package's importer (Package::acquireSession()) or the replicated object
  // (ReplicatedObj::acquireSession()) in this interpreter; empty otherwise.
  Obj self;

  // InterpreterSession::global()
  //
  // getattr(importlib.import_module(module), name).
  Obj global(const char* module, const char* name) const;

  // InterpreterSession::fromIValue()
  //
  // The Python object for `value` in this interpreter (tensors without a copy; a tensor
  // another interpreter wrapped first is handed over as an alias of the same storage).
  Obj fromIValue(c10::IValue value) const;

  // InterpreterSession::fromMovable()
  //
  // This interpreter's copy of a replicated object, materialised on first use and
  // cached. INVALID_ARGUMENT if `obj` belongs to another manager.
  Obj fromMovable(const ReplicatedObj& obj) const;

  // InterpreterSession::isOwner()
  //
  // True if `obj` lives in this session's interpreter. (torch::deploy compared sessions;
  // pyfleet objects belong to interpreters, and any session of theirs may use them.)
  bool isOwner(const Obj& obj) const;

  // InterpreterSession::createMovable()
  //
  // `obj` replicated to every interpreter of the manager (see
  // InterpreterManager::createMovable).
  ReplicatedObj createMovable(Obj obj);

  // The interpreter this session holds.
  Interpreter& interpreter() const;

 private:
  friend struct internal::Access;
  InterpreterSession(std::shared_ptr<internal::ManagerState> manager, Interpreter* interpreter,
                     int balancer_slot) noexcept;
  void release() noexcept;

  std::shared_ptr<internal::ManagerState> manager_;  // null for a standalone Interpreter
  Interpreter* interpreter_ = nullptr;               // owned by the manager (or the caller)
  int balancer_slot_ = -1;                           // load-balancer slot to free, -1: none
};

}  // namespace pyfleet
