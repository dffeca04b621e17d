// File: replicated_obj.h
//
// pyfleet::ReplicatedObj: one Python object available on every interpreter of a manager.
// Each interpreter materialises its copy on first use and keeps it; tensor storages are
// shared by all copies (from the package mapping, or the storages the object was
// pickled with), never copied. Calling it takes a free interpreter, calls, converts the
// result and gives the interpreter back.
//
//   pyfleet::InterpreterManager manager(4);
//   pyfleet::Package package = manager.loadPackage("resnet.pt");
//   pyfleet::ReplicatedObj model = package.loadPickle("model", "model.pkl");
//   at::Tensor y = model({at::randn({1, 3, 224, 224})}).toTensor();     // any thread
//   std::future<c10::IValue> f = model.submit({x}, {std::chrono::milliseconds(20)});
//
// A ReplicatedObj keeps alive what it needs: its package's archive and its manager's
// interpreters, so one taken from a temporary Package, or used after its
// InterpreterManager handle is gone, never dangles (submit() then fails: no workers).
// Copies share one object; all methods are thread-safe. A default-constructed one is
// empty and throws FAILED_PRECONDITION when used.
#pragma once

#include <ATen/core/ivalue.h>
#include <c10/util/ArrayRef.h>

#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "pyfleet/call_options.h"
#include "pyfleet/error.h"
#include "pyfleet/export.h"
#include "pyfleet/interpreter_session.h"
#include "pyfleet/obj.h"

namespace pyfleet {

class Interpreter;

namespace internal {
class ReplicatedObjImpl;
}  // namespace internal

// The outcome of an asynchronous call: its value, or the pyfleet::Error it failed with.
class PYFLEET_API CallResult {
 public:
  static CallResult success(c10::IValue value);
  static CallResult failure(Error error);

  bool ok() const noexcept { return error_ == nullptr; }
  // The value; throws the error if the call failed.
  const c10::IValue& value() const;
  // The error; nullptr if the call succeeded.
  const Error* error() const noexcept { return error_.get(); }

 private:
  c10::IValue value_;
  std::shared_ptr<const Error> error_;
};

class PYFLEET_API ReplicatedObj {
 public:
  // An empty ReplicatedObj (see the file comment).
  ReplicatedObj() = default;

  // ReplicatedObj::acquireSession()
  //
  // A session on `onThisInterpreter` (an interpreter of this object's manager), or on
  // a free one if null, whose `self` is this interpreter's copy of the object.
  InterpreterSession acquireSession(const Interpreter* onThisInterpreter = nullptr) const;

  // ReplicatedObj::operator()
  //
  // self(*args) on a free interpreter, the result converted to an IValue (see
  // Obj::toIValue) in the same crossing.
  c10::IValue operator()(at::ArrayRef<c10::IValue> args) const;

  // ReplicatedObj::callKwargs()
  //
  // self(*args, **kwargs) and self(**kwargs), as operator().
  [[nodiscard]] c10::IValue callKwargs(std::vector<c10::IValue> args,
                                       std::unordered_map<std::string, c10::IValue> kwargs) const;
  [[nodiscard]] c10::IValue callKwargs(std::unordered_map<std::string, c10::IValue> kwargs) const;

  // ReplicatedObj::hasattr()
  [[nodiscard]] bool hasattr(const char* name) const;

  // ReplicatedObj::submit()
  //
  // Queues self(*args) for a free interpreter and returns at once. The future holds the
  // IValue result or throws the call's pyfleet::Error. Fails fast, by throwing
  // pyfleet::Error RESOURCE_EXHAUSTED, when the manager's queue holds
  // ManagerOptions::max_queue calls, and FAILED_PRECONDITION once the manager is gone.
  // Deadlines and cancellation: Note [Deadlines and interruption] in call_options.h.
  std::future<c10::IValue> submit(std::vector<c10::IValue> args, CallOptions options = {}) const;
  std::future<c10::IValue> submit(std::vector<c10::IValue> args,
                                  std::unordered_map<std::string, c10::IValue> kwargs,
                                  CallOptions options = {}) const;
  // The callback form: `done` runs once, on a pyfleet thread (a worker, or the deadline
  // watcher for a call that timed out or was cancelled); keep it short and don't block.
  void submit(std::vector<c10::IValue> args, std::function<void(CallResult)> done,
              CallOptions options = {}) const;

  // ReplicatedObj::call()
  //
  // submit(args, options).get() without the hand-off to a worker thread: runs self(*args)
  // on the calling thread when an interpreter is free and no call waits in the queue,
  // else waits its turn there. Throws what submit() and the call throw. A call running on
  // this thread when its deadline passes is interrupted, and throws DEADLINE_EXCEEDED
  // once Python gives the thread back.
  c10::IValue call(std::vector<c10::IValue> args, CallOptions options) const;
  c10::IValue call(std::vector<c10::IValue> args, std::unordered_map<std::string, c10::IValue> kwargs,
                   CallOptions options) const;

  // ReplicatedObj::unload()
  //
  // Drops the copy on `onThisInterpreter`, or on every interpreter if null; the next use
  // there materialises it again. Objs already taken from a copy stay valid.
  void unload(const Interpreter* onThisInterpreter = nullptr);

  // This interpreter's copy, as InterpreterSession::fromMovable.
  Obj toObj(InterpreterSession* session) const;

  // How many times a copy was materialised (in any interpreter) since creation.
  size_t materializations() const;
  // How many interpreters hold a copy now.
  size_t loadedCopies() const;

  bool empty() const noexcept { return impl_ == nullptr; }

 private:
  friend struct internal::Access;
  explicit ReplicatedObj(std::shared_ptr<internal::ReplicatedObjImpl> impl) : impl_(std::move(impl)) {}
  const internal::ReplicatedObjImpl& impl(const char* operation) const;

  std::shared_ptr<internal::ReplicatedObjImpl> impl_;
};

}  // namespace pyfleet
