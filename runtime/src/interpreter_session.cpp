// File: interpreter_session.cpp — pyfleet::InterpreterSession (interpreter_session.h).
#include "pyfleet/interpreter_session.h"

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "pyfleet/interpreter.h"
#include "pyfleet/replicated_obj.h"
#include "runtime/src/access.h"
#include "runtime/src/interpreter_core.h"
#include "runtime/src/ivalue_bridge.h"
#include "runtime/src/manager_state.h"
#include "runtime/src/replicated_obj_impl.h"

namespace pyfleet {

using internal::Access;

InterpreterSession::InterpreterSession(std::shared_ptr<internal::ManagerState> manager, Interpreter* interpreter,
                                       int balancer_slot) noexcept
    : manager_(std::move(manager)), interpreter_(interpreter), balancer_slot_(balancer_slot) {}

InterpreterSession::InterpreterSession(InterpreterSession&& other) noexcept
    : self(std::move(other.self)),
      manager_(std::move(other.manager_)),
      interpreter_(std::exchange(other.interpreter_, nullptr)),
      balancer_slot_(std::exchange(other.balancer_slot_, -1)) {}

InterpreterSession& InterpreterSession::operator=(InterpreterSession&& other) noexcept {
  if (this != &other) {
    release();
    self = std::move(other.self);
    manager_ = std::move(other.manager_);
    interpreter_ = std::exchange(other.interpreter_, nullptr);
    balancer_slot_ = std::exchange(other.balancer_slot_, -1);
  }
  return *this;
}

InterpreterSession::~InterpreterSession() { release(); }

void InterpreterSession::release() noexcept {
  if (balancer_slot_ >= 0 && manager_ != nullptr) manager_->balancer().release(balancer_slot_);
  balancer_slot_ = -1;
}

Interpreter& InterpreterSession::interpreter() const {
  if (interpreter_ == nullptr) {
    throw Error(absl::FailedPreconditionError("use of a moved-from pyfleet::InterpreterSession"));
  }
  return *interpreter_;
}

Obj InterpreterSession::global(const char* module, const char* name) const {
  return interpreter().global(module, name);
}

Obj InterpreterSession::fromIValue(c10::IValue value) const {
  const std::shared_ptr<internal::InterpreterCore>& core = Access::core(interpreter());
  internal::AbiValues values(*core);
  PyfleetValue v = values.add(value, "value");
  PyfleetObj* out = nullptr;
  ThrowIfError(core->take(core->abi()->from_value(core->interp(), &v, &out)));
  return Access::makeObj(core, out);
}

bool InterpreterSession::isOwner(const Obj& obj) const {
  return !obj.empty() && Access::core(obj) == Access::core(interpreter());
}

Obj InterpreterSession::fromMovable(const ReplicatedObj& obj) const {
  const std::shared_ptr<internal::ReplicatedObjImpl>& impl = Access::impl(obj);
  if (impl == nullptr) throw Error(absl::FailedPreconditionError("fromMovable: an empty ReplicatedObj"));
  const int position = impl->manager().positionOf(Access::core(interpreter()).get());
  if (position < 0) {
    throw Error(absl::InvalidArgumentError(absl::StrCat(
        "fromMovable: ", Access::core(interpreter())->name(),
        " does not belong to the InterpreterManager the ReplicatedObj was made by")));
  }
  return *impl->copy(position);
}

ReplicatedObj InterpreterSession::createMovable(Obj obj) {
  if (manager_ == nullptr) {
    throw Error(absl::FailedPreconditionError(
        "createMovable: the session's interpreter does not belong to an InterpreterManager"));
  }
  if (!isOwner(obj)) {
    const std::string where = obj.empty() ? std::string("nowhere (an empty Obj)")
                                          : Access::core(obj)->name();
    throw Error(absl::InvalidArgumentError(absl::StrCat(
        "Cannot create movable from an object that lives in different session: the object lives in ", where,
        ", the session is on ", Access::core(interpreter())->name())));
  }
  const int position = manager_->positionOf(Access::core(interpreter()).get());
  internal::FromPickle recipe = internal::PickleForReplication(*manager_, position, obj);
  return Access::makeReplicated(std::make_shared<internal::ReplicatedObjImpl>(manager_, std::move(recipe)));
}

}  // namespace pyfleet
