#include "runtime/src/abi_status.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"

namespace pyfleet::internal {

absl::Status TakeAbiStatus(const PyfleetInterpreterAbi* abi, PyfleetStatus* status, std::string_view context) {
  if (status == nullptr) return absl::OkStatus();
  absl::Status result(static_cast<absl::StatusCode>(status->code),
                      absl::StrCat("[", std::string(context), "] ", status->message ? status->message : "(no message)"));
  if (status->python_type != nullptr) result.SetPayload(kPythonTypePayload, absl::Cord(status->python_type));
  if (status->traceback != nullptr) result.SetPayload(kTracebackPayload, absl::Cord(status->traceback));
  abi->status_free(status);
  return result;
}

}  // namespace pyfleet::internal
