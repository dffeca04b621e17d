// File: interpreter_core.cpp — see interpreter_core.h.
#include "runtime/src/interpreter_core.h"

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "runtime/src/abi_status.h"
#include "runtime/src/access.h"

namespace pyfleet::internal {

absl::Status InterpreterCore::take(PyfleetStatus* status) const { return TakeAbiStatus(abi_, status, name()); }

void InterpreterCore::checkOwner(const Obj& obj) const {
  const InterpreterCore* owner = Access::core(obj).get();
  if (owner == this) return;
  std::string owner_name = owner == nullptr ? std::string("no interpreter (an empty Obj)") : owner->name();
  if (owner != nullptr && owner->index_ == index_) owner_name += " of another InterpreterManager";
  throw Error(absl::InvalidArgumentError(absl::StrCat("an object of ", owner_name, " used with ", name(),
                                                      ": a Python object can only be used in the interpreter it "
                                                      "lives in (replicate it with createMovable)")));
}

}  // namespace pyfleet::internal
