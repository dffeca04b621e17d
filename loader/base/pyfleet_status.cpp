// File: pyfleet_status.cpp — see pyfleet_status.h.
#include "loader/base/pyfleet_status.h"

#include <cstdlib>
#include <cstring>

namespace pyfleet::internal {

// PyfleetCode mirrors absl::StatusCode value for value (interpreter_abi.h), so both sides
// convert with a cast.
#define PYFLEET_SAME_CODE(ours, absl_code) \
  static_assert(static_cast<int>(ours) == static_cast<int>(absl::StatusCode::absl_code), #ours)
PYFLEET_SAME_CODE(PYFLEET_OK, kOk);
PYFLEET_SAME_CODE(PYFLEET_CANCELLED, kCancelled);
PYFLEET_SAME_CODE(PYFLEET_UNKNOWN, kUnknown);
PYFLEET_SAME_CODE(PYFLEET_INVALID_ARGUMENT, kInvalidArgument);
PYFLEET_SAME_CODE(PYFLEET_DEADLINE_EXCEEDED, kDeadlineExceeded);
PYFLEET_SAME_CODE(PYFLEET_NOT_FOUND, kNotFound);
PYFLEET_SAME_CODE(PYFLEET_ALREADY_EXISTS, kAlreadyExists);
PYFLEET_SAME_CODE(PYFLEET_PERMISSION_DENIED, kPermissionDenied);
PYFLEET_SAME_CODE(PYFLEET_RESOURCE_EXHAUSTED, kResourceExhausted);
PYFLEET_SAME_CODE(PYFLEET_FAILED_PRECONDITION, kFailedPrecondition);
PYFLEET_SAME_CODE(PYFLEET_ABORTED, kAborted);
PYFLEET_SAME_CODE(PYFLEET_OUT_OF_RANGE, kOutOfRange);
PYFLEET_SAME_CODE(PYFLEET_UNIMPLEMENTED, kUnimplemented);
PYFLEET_SAME_CODE(PYFLEET_INTERNAL, kInternal);
PYFLEET_SAME_CODE(PYFLEET_UNAVAILABLE, kUnavailable);
PYFLEET_SAME_CODE(PYFLEET_DATA_LOSS, kDataLoss);
PYFLEET_SAME_CODE(PYFLEET_UNAUTHENTICATED, kUnauthenticated);
#undef PYFLEET_SAME_CODE

char* DupCString(std::string_view s) noexcept {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) return nullptr;
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

PyfleetStatus* NewPyfleetStatus(PyfleetCode code, std::string_view message, std::string_view python_type,
                                std::string_view traceback) noexcept {
  auto* status = static_cast<PyfleetStatus*>(std::calloc(1, sizeof(PyfleetStatus)));
  if (status == nullptr) return nullptr;  // out of memory: nothing better to report
  status->code = code == PYFLEET_OK ? PYFLEET_UNKNOWN : code;
  status->message = DupCString(message);
  status->python_type = python_type.empty() ? nullptr : DupCString(python_type);
  status->traceback = traceback.empty() ? nullptr : DupCString(traceback);
  return status;
}

PyfleetStatus* PyfleetStatusFromStatus(const absl::Status& status) noexcept {
  if (status.ok()) return nullptr;
  absl::string_view message = status.message();
  // PyfleetCode is numbered like absl::StatusCode (interpreter_abi.h): a cast.
  return NewPyfleetStatus(static_cast<PyfleetCode>(status.code()), std::string_view(message.data(), message.size()));
}

void FreePyfleetStatus(PyfleetStatus* status) noexcept {
  if (status == nullptr) return;
  std::free(status->message);
  std::free(status->python_type);
  std::free(status->traceback);
  std::free(status);
}

}  // namespace pyfleet::internal
