// File: interpreter_core.h
//
// InterpreterCore: what an Interpreter and every Obj of it share — the ABI table of
// the interpreter's library copy and its PyfleetInterp handle. Obj handles keep the
// core alive, so an Obj that outlives its Interpreter is inert instead of dangling.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "pyfleet/native_libraries.h"
#include "pyfleet/obj.h"
#include "pyfleet/interpreter_abi.h"

namespace pyfleet::internal {

class LibraryLoader;
class ManagerState;

// Context of one interpreter's extension loader callback (PyfleetExtensionLoader).
struct ExtensionLoaderContext {
  LibraryLoader* loader = nullptr;  // owned by NativeLibraries, which outlives the core
  int index = 0;
};

class InterpreterCore {
 public:
  InterpreterCore(std::shared_ptr<NativeLibraries> libraries, int index)
      : libraries_(std::move(libraries)), index_(index) {}

  int index() const { return index_; }
  const PyfleetInterpreterAbi* abi() const { return abi_; }
  PyfleetInterp* interp() const { return interp_; }
  // "interpreter 3", for messages.
  std::string name() const { return "interpreter " + std::to_string(index_); }

  // Converts and frees an ABI status, naming this interpreter.
  absl::Status take(PyfleetStatus* status) const;
  // Throws INVALID_ARGUMENT unless `obj` lives in this interpreter (names both).
  void checkOwner(const Obj& obj) const;

  std::shared_ptr<NativeLibraries> libraries_;
  int index_;
  // Set when an InterpreterManager owns the interpreter: the manager (not owned: the
  // manager owns the interpreter) and the interpreter's position in it.
  std::weak_ptr<ManagerState> manager_;
  int position_ = -1;
  const PyfleetInterpreterAbi* abi_ = nullptr;  // static data of the library copy
  PyfleetInterp* interp_ = nullptr;             // owned by the library copy
  ExtensionLoaderContext loader_context_;
};

}  // namespace pyfleet::internal
