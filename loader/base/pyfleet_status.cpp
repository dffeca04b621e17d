// File: pyfleet_status.cpp — see pyfleet_status.h.
#include "loader/base/pyfleet_status.h"

#include <cstdlib>
#include <cstring>

namespace pyfleet::internal {

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
