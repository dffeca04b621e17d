// File: torch_deploy.h
//
// Moving from torch::deploy (pytorch/multipy, `multipy/runtime/deploy.h`) to pyfleet:
// include this header instead and keep the code. It maps every public class and member
// of deploy.h onto pyfleet under the torch::deploy names (and multipy::runtime, as
// deploy.h aliases it):
//
//   #include <pyfleet/torch_deploy.h>
//
//   torch::deploy::InterpreterManager manager(4);
//   torch::deploy::Package package = manager.loadPackage("model.pt");
//   torch::deploy::ReplicatedObj model = package.loadPickle("model", "model.pkl");
//   at::Tensor y = model({at::ones({10, 20})}).toTensor();
//   {
//     auto I = manager.acquireOne();
//     auto obj = I.global("torch.nn", "Module")(std::vector<torch::deploy::Obj>());
//     torch::deploy::ReplicatedObj movable = manager.createMovable(obj, &I);
//   }
//
// Mapped: InterpreterManager (acquireOne, allInstances, debugLimitInterpreters,
// loadPackage(path), registerModuleSource, countRegisteredModuleSources, createMovable),
// Interpreter (acquireSession), InterpreterSession (self, global, fromIValue,
// fromMovable, isOwner, createMovable), Obj (operator() on IValues and on Objs,
// callKwargs, attr, hasattr, toIValue), ReplicatedObj (operator(), callKwargs, hasattr,
// acquireSession, unload, toObj), Package (loadPickle, loadText, loadBinary,
// acquireSession, createMovable), Environment, PathEnvironment, NoopEnvironment,
// PythonMethodWrapper, LoadBalancer, and the MULTIPY_INTERNAL_ASSERT / MULTIPY_CHECK
// macros (which throw std::runtime_error, as multipy's do). Every error is a
// pyfleet::Error, a std::runtime_error, as multipy's were.
//
// Deliberate differences, and why:
//  1. A tensor already handed to one interpreter can be handed to another: pyfleet gives
//     the second interpreter an alias of the same storage (Note [Tensor handoff] in
//     interpreter/src/tensor_bridge.h), where torch::deploy threw "already been used by
//     another torch deploy interpreter" (pytorch#57756). Tensors then move freely
//     between interpreters, as a host that sends each call to whichever interpreter is
//     free needs; multipy's tests TensorSharingNotAllowed, TaggingRace and DisarmHook,
//     which expect the error, fail by design.
//  2. Sessions do not hold the interpreter's GIL (Note [Sessions do not hold the GIL] in
//     interpreter_session.h): each call takes it. Nothing changes for callers, and two
//     sessions on one interpreter in one thread cannot deadlock.
//  3. Objs belong to interpreters, not sessions: isOwner() is true for an object of the
//     session's interpreter whatever session made it, and an Obj stays usable after its
//     session ends (in multipy using it after its session closed was undefined).
//  4. Module sources registered with registerModuleSource() take precedence over
//     modules of the same name on sys.path (multipy's finder came last): you get the
//     code you registered.
//  5. Not provided: loadPackage(std::shared_ptr<caffe2::serialize::ReadAdapterInterface>)
//     (write the bytes to a file and load its path: pyfleet serves records from a
//     mapping of the file); constructing an Interpreter directly (use
//     InterpreterManager, or pyfleet::Interpreter::create); the internal types deploy.h
//     also exposes (ReplicatedObjImpl, PickledObject, InterpreterObj,
//     InterpreterSessionImpl, InterpreterImpl, EmbeddedFile, MemFile, ElfFile).
//  6. InterpreterSession::createMovable is not deprecated, and sessions from
//     Interpreter::acquireSession() can use it (multipy's needed a manager they never
//     had in its open-source build).
//  7. Interpreters run with sys.executable == "torch_deploy", as multipy's internal
//     build did (ARCHITECTURE.md point 6), so torch skips process-global registrations.
//  8. torch.ops.load_library loads operator libraries (torchvision's, your own), once
//     per process, for every interpreter (Note [Operator libraries load once per
//     process] in stubs/_pyfleet_bootstrap.py); under sys.executable == "torch_deploy"
//     torch itself made it a silent no-op, so a missing library now fails loudly.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "pyfleet/pyfleet.h"

namespace torch {
namespace deploy {

using ::pyfleet::Environment;
using ::pyfleet::Interpreter;
using ::pyfleet::InterpreterManager;
using ::pyfleet::InterpreterSession;
using ::pyfleet::NoopEnvironment;
using ::pyfleet::Obj;
using ::pyfleet::Package;
using ::pyfleet::PathEnvironment;
using ::pyfleet::PythonMethodWrapper;
using ::pyfleet::ReplicatedObj;

// torch::deploy's LoadBalancer, for code that used it directly: n counters, acquire()
// prefers the slot this thread used last, then a free one, then the least used.
// (InterpreterManager balances with pyfleet's own, see Note [Load balancing].)
class LoadBalancer {
 public:
  explicit LoadBalancer(size_t n) : allocated_(n), n_(n), uses_(new Counter[n]) {}

  void setResourceLimit(size_t n) {
    if (n > allocated_) throw std::runtime_error("LoadBalancer::setResourceLimit: more than allocated");
    n_ = n;
  }

  int acquire() {
    thread_local size_t last = 0;
    size_t best = 0;
    uint64_t best_uses = std::numeric_limits<uint64_t>::max();
    for (size_t k = 0; k < n_; ++k) {
      const size_t i = (last + k) % n_;
      uint64_t expected = 0;
      if (uses_[i].value.compare_exchange_strong(expected, 1)) {
        last = i;
        return static_cast<int>(i);
      }
      if (expected < best_uses) {
        best_uses = expected;
        best = i;
      }
    }
    uses_[best].value.fetch_add(1);
    return static_cast<int>(best);
  }

  void free(int where) { uses_[where].value.fetch_sub(1); }

 private:
  struct alignas(64) Counter {
    std::atomic<uint64_t> value{0};
  };
  size_t allocated_;
  size_t n_;
  std::unique_ptr<Counter[]> uses_;
};

}  // namespace deploy
}  // namespace torch

namespace multipy {
namespace runtime = torch::deploy;
}  // namespace multipy

// MULTIPY_INTERNAL_ASSERT(cond) / MULTIPY_INTERNAL_ASSERT(cond, message) and
// MULTIPY_CHECK(...): throw std::runtime_error naming the condition, function, file and
// line when `cond` is false.
#define PYFLEET_MULTIPY_FAIL_(kind, cond_text, message)                                            \
  throw std::runtime_error(std::string(kind) + ": (" + cond_text + "), function " + __func__ +    \
                           ", file " + __FILE__ + ", line " + std::to_string(__LINE__) + ".\n" + \
                           std::string(message) + "\n")
#define PYFLEET_MULTIPY_PICK_(_1, _2, NAME, ...) NAME
#define PYFLEET_MULTIPY_ASSERT1_(cond) \
  if (!(cond)) PYFLEET_MULTIPY_FAIL_("Internal Assertion failed", #cond, #cond)
#define PYFLEET_MULTIPY_ASSERT2_(cond, message) \
  if (!(cond)) PYFLEET_MULTIPY_FAIL_("Internal Assertion failed", #cond, message)
#define PYFLEET_MULTIPY_CHECK1_(cond) \
  if (!(cond)) PYFLEET_MULTIPY_FAIL_("Check failed", #cond, #cond)
#define PYFLEET_MULTIPY_CHECK2_(cond, message) \
  if (!(cond)) PYFLEET_MULTIPY_FAIL_("Check failed", #cond, message)
#define MULTIPY_INTERNAL_ASSERT(...) \
  PYFLEET_MULTIPY_PICK_(__VA_ARGS__, PYFLEET_MULTIPY_ASSERT2_, PYFLEET_MULTIPY_ASSERT1_, )(__VA_ARGS__)
#define MULTIPY_CHECK(...) \
  PYFLEET_MULTIPY_PICK_(__VA_ARGS__, PYFLEET_MULTIPY_CHECK2_, PYFLEET_MULTIPY_CHECK1_, )(__VA_ARGS__)
