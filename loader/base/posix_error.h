// File: posix_error.h
//
// errno values as text and as absl::Status, the one way every layer reports a failed
// system call:
//
//   if (::fstat(fd, &st) != 0) return PosixError(errno, absl::StrCat("fstat ", path));
//   // NOT_FOUND "fstat /m.pt: No such file or directory", PERMISSION_DENIED, ...
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace pyfleet::internal {

// The errno text for `err` ("No such file or directory"). Thread-safe.
std::string ErrnoText(int err);

// "<what>: <errno text>" with the canonical code absl gives `err` (ENOENT -> NOT_FOUND,
// EACCES -> PERMISSION_DENIED, ENOSPC -> RESOURCE_EXHAUSTED, ...).
absl::Status PosixError(int err, absl::string_view what);

}  // namespace pyfleet::internal
