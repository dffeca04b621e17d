// File: interpreter_core.cpp — see interpreter_core.h.
#include "runtime/src/interpreter_core.h"

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "runtime/src/abi_status.h"

namespace pyfleet::internal {

absl::Status InterpreterCore::take(PyfleetStatus* status) const { return TakeAbiStatus(abi_, status, name()); }

void InterpreterCore::checkOwner(const Obj& obj) const {
  if (obj.interpreterIndex() != index_) {
    throw Error(absl::InvalidArgumentError(absl::StrCat("object of interpreter ", obj.interpreterIndex(),
                                                        " used with interpreter ", index_)));
  }
}

}  // namespace pyfleet::internal
