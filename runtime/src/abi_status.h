// File: abi_status.h
//
// Converting the C ABI's PyfleetStatus into absl::Status (the codes are numbered
// alike, so it is a cast; the Python type and traceback become payloads).
//
//   absl::Status s = TakeAbiStatus(abi, abi->run(interp, code, "<x>"), "interpreter 2");
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "pyfleet/interpreter_abi.h"

namespace pyfleet::internal {

// Converts and frees `status` (NULL -> OK). `context` prefixes the message, e.g.
// "interpreter 3".
absl::Status TakeAbiStatus(const PyfleetInterpreterAbi* abi, PyfleetStatus* status, std::string_view context);

}  // namespace pyfleet::internal
