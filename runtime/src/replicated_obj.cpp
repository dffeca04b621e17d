// File: replicated_obj.cpp — pyfleet::ReplicatedObj and CallResult (replicated_obj.h).
#include "pyfleet/replicated_obj.h"

#include <chrono>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "pyfleet/interpreter.h"
#include "runtime/src/access.h"
#include "runtime/src/dispatcher.h"
#include "runtime/src/interpreter_core.h"
#include "runtime/src/manager_state.h"
#include "runtime/src/replicated_obj_impl.h"

namespace pyfleet {

using internal::Access;
using internal::ManagerState;
using internal::MetricsRecorder;
using internal::ReplicatedObjImpl;

// ---- CallResult --------------------------------------------------------------------

CallResult CallResult::success(c10::IValue value) {
  CallResult r;
  r.value_ = std::move(value);
  return r;
}

CallResult CallResult::failure(Error error) {
  CallResult r;
  r.error_ = std::make_shared<const Error>(std::move(error));
  return r;
}

const c10::IValue& CallResult::value() const {
  if (error_ != nullptr) throw *error_;
  return value_;
}

// ---- ReplicatedObj -----------------------------------------------------------------

namespace {

// Runs `body(position)` on a free interpreter of `impl`'s manager, recording it in the
// manager's metrics.
template <typename Body>
auto OnFreeInterpreter(const ReplicatedObjImpl& impl, Body&& body) -> decltype(body(0)) {
  ManagerState& manager = impl.manager();
  const int position = manager.balancer().acquire();
  absl::Cleanup release = [&] { manager.balancer().release(position); };
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  try {
    auto result = body(position);
    manager.metrics().recordCall(position, MetricsRecorder::Outcome::kOk, seconds(), -1);
    return result;
  } catch (...) {
    manager.metrics().recordCall(position, MetricsRecorder::Outcome::kError, seconds(), -1);
    throw;
  }
}

// The position of `interp` in `impl`'s manager; INVALID_ARGUMENT if it is not one.
int PositionOf(const ReplicatedObjImpl& impl, const Interpreter& interp) {
  const int position = impl.manager().positionOf(Access::core(interp).get());
  if (position < 0) {
    throw Error(absl::InvalidArgumentError(absl::StrCat(
        Access::core(interp)->name(), " does not belong to the InterpreterManager this ReplicatedObj was made by")));
  }
  return position;
}

}  // namespace

const ReplicatedObjImpl& ReplicatedObj::impl(const char* operation) const {
  if (impl_ == nullptr) {
    throw Error(absl::FailedPreconditionError(
        absl::StrCat("pyfleet::ReplicatedObj::", operation, " on an empty ReplicatedObj")));
  }
  return *impl_;
}

InterpreterSession ReplicatedObj::acquireSession(const Interpreter* onThisInterpreter) const {
  const ReplicatedObjImpl& i = impl("acquireSession");
  const std::shared_ptr<ManagerState>& manager = i.sharedManager();
  int position;
  int slot = -1;
  if (onThisInterpreter != nullptr) {
    position = PositionOf(i, *onThisInterpreter);
  } else {
    position = slot = manager->balancer().acquire();
  }
  InterpreterSession session = Access::makeSession(manager, &manager->interpreter(position), slot);
  session.self = *i.copy(position);
  return session;
}

c10::IValue ReplicatedObj::operator()(at::ArrayRef<c10::IValue> args) const {
  const ReplicatedObjImpl& i = impl("operator()");
  return OnFreeInterpreter(i, [&](int position) { return i.call(position, args.data(), args.size(), nullptr); });
}

c10::IValue ReplicatedObj::callKwargs(std::vector<c10::IValue> args,
                                      std::unordered_map<std::string, c10::IValue> kwargs) const {
  const ReplicatedObjImpl& i = impl("callKwargs");
  return OnFreeInterpreter(i, [&](int position) { return i.call(position, args.data(), args.size(), &kwargs); });
}

c10::IValue ReplicatedObj::callKwargs(std::unordered_map<std::string, c10::IValue> kwargs) const {
  const ReplicatedObjImpl& i = impl("callKwargs");
  return OnFreeInterpreter(i, [&](int position) { return i.call(position, nullptr, 0, &kwargs); });
}

bool ReplicatedObj::hasattr(const char* name) const {
  const ReplicatedObjImpl& i = impl("hasattr");
  return OnFreeInterpreter(i, [&](int position) { return i.copy(position)->hasattr(name); });
}

std::future<c10::IValue> ReplicatedObj::submit(std::vector<c10::IValue> args, CallOptions options) const {
  return submit(std::move(args), std::unordered_map<std::string, c10::IValue>(), std::move(options));
}

std::future<c10::IValue> ReplicatedObj::submit(std::vector<c10::IValue> args,
                                               std::unordered_map<std::string, c10::IValue> kwargs,
                                               CallOptions options) const {
  const ReplicatedObjImpl& i = impl("submit");
  auto promise = std::make_shared<std::promise<c10::IValue>>();
  std::future<c10::IValue> future = promise->get_future();
  std::shared_ptr<internal::Dispatcher> dispatcher = i.manager().dispatcher();
  if (dispatcher == nullptr) {
    throw Error(absl::FailedPreconditionError("submit: the InterpreterManager has been destroyed"));
  }
  dispatcher->submit(impl_, std::move(args), std::move(kwargs), options, [promise](CallResult result) {
    if (result.ok()) {
      promise->set_value(result.value());
    } else {
      promise->set_exception(std::make_exception_ptr(*result.error()));
    }
  });
  return future;
}

void ReplicatedObj::submit(std::vector<c10::IValue> args, std::function<void(CallResult)> done,
                           CallOptions options) const {
  const ReplicatedObjImpl& i = impl("submit");
  if (!done) throw Error(absl::InvalidArgumentError("submit: the callback is empty"));
  std::shared_ptr<internal::Dispatcher> dispatcher = i.manager().dispatcher();
  if (dispatcher == nullptr) {
    throw Error(absl::FailedPreconditionError("submit: the InterpreterManager has been destroyed"));
  }
  dispatcher->submit(impl_, std::move(args), {}, options, std::move(done));
}

c10::IValue ReplicatedObj::call(std::vector<c10::IValue> args, CallOptions options) const {
  return call(std::move(args), std::unordered_map<std::string, c10::IValue>(), std::move(options));
}

c10::IValue ReplicatedObj::call(std::vector<c10::IValue> args, std::unordered_map<std::string, c10::IValue> kwargs,
                                CallOptions options) const {
  const ReplicatedObjImpl& i = impl("call");
  std::shared_ptr<internal::Dispatcher> dispatcher = i.manager().dispatcher();
  if (dispatcher == nullptr) {
    throw Error(absl::FailedPreconditionError("call: the InterpreterManager has been destroyed"));
  }
  CallResult result = dispatcher->callHere(impl_, std::move(args), std::move(kwargs), options);
  if (!result.ok()) throw *result.error();
  return result.value();
}

void ReplicatedObj::unload(const Interpreter* onThisInterpreter) {
  if (impl_ == nullptr) return;  // nothing to drop
  impl_->unload(onThisInterpreter == nullptr ? -1 : PositionOf(*impl_, *onThisInterpreter));
}

Obj ReplicatedObj::toObj(InterpreterSession* session) const {
  if (session == nullptr) throw Error(absl::InvalidArgumentError("toObj: the session is null"));
  return session->fromMovable(*this);
}

size_t ReplicatedObj::materializations() const { return impl_ == nullptr ? 0 : impl_->materializations(); }

size_t ReplicatedObj::loadedCopies() const { return impl_ == nullptr ? 0 : impl_->loadedCopies(); }

}  // namespace pyfleet
