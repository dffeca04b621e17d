// File: error.h
//
// pyfleet::Error: the one exception type of pyfleet's public C++ API. It holds an
// absl::Status; a Python exception that crossed into C++ keeps its type and formatted
// traceback as payloads.
//
//   try {
//     interp.run("1 / 0");
//   } catch (const pyfleet::Error& e) {
//     e.pythonType();   // "builtins.ZeroDivisionError"
//     e.traceback();    // "Traceback (most recent call last):\n ..."
//     e.status().code() // absl::StatusCode::kUnknown
//   }
//
// Errors are raised only by ThrowIfError(status), so the type exists once, in the host.
#pragma once

#include <stdexcept>
#include <string>

#include "absl/status/status.h"
#include "pyfleet/export.h"

namespace pyfleet {

// Payload type URLs (absl::Status::SetPayload) of a Python error.
inline constexpr char kPythonTypePayload[] = "pyfleet/python_type";
inline constexpr char kTracebackPayload[] = "pyfleet/traceback";

class PYFLEET_API Error : public std::runtime_error {
 public:
  explicit Error(absl::Status status);

  // Error::status()
  //
  // The error as a status: code (maps onto RPC codes), message and payloads.
  const absl::Status& status() const { return status_; }

  // Error::pythonType()
  //
  // The qualified Python exception type ("builtins.KeyError"), or "" if the error did
  // not come from Python.
  std::string pythonType() const;

  // Error::traceback()
  //
  // The formatted Python traceback, or "".
  std::string traceback() const;

 private:
  absl::Status status_;
};

// Throws pyfleet::Error if `status` is not OK.
PYFLEET_API void ThrowIfError(const absl::Status& status);

}  // namespace pyfleet
