#include "pyfleet/error.h"



#include "absl/strings/cord.h"

namespace pyfleet {
namespace {

std::string WhatText(const absl::Status& status) {
  std::string text = std::string(absl::StatusCodeToString(status.code())) + ": ";
  auto type = status.GetPayload(kPythonTypePayload);
  if (type) text += std::string(*type) + ": ";
  text += std::string(status.message());
  auto tb = status.GetPayload(kTracebackPayload);
  if (tb) text += "\n" + std::string(*tb);
  return text;
}

}  // namespace

Error::Error(absl::Status status) : std::runtime_error(WhatText(status)), status_(std::move(status)) {}

std::string Error::pythonType() const {
  auto p = status_.GetPayload(kPythonTypePayload);
  return p ? std::string(*p) : std::string();
}

std::string Error::traceback() const {
  auto p = status_.GetPayload(kTracebackPayload);
  return p ? std::string(*p) : std::string();
}

void ThrowIfError(const absl::Status& status) {
  if (!status.ok()) throw Error(status);
}

}  // namespace pyfleet
