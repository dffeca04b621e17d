// File: posix_error.cpp — see posix_error.h.
#include "loader/base/posix_error.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace pyfleet::internal {

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r returns the message pointer (possibly not `buf`).
  const char* text = strerror_r(err, buf, sizeof(buf));
  return text != nullptr ? std::string(text) : absl::StrCat("errno ", err);
}

absl::Status PosixError(int err, absl::string_view what) {
  // absl::ErrnoToStatus maps the code; the text comes from ErrnoText (thread-safe).
  return absl::Status(absl::ErrnoToStatus(err, "").code(), absl::StrCat(what, ": ", ErrnoText(err)));
}

}  // namespace pyfleet::internal
