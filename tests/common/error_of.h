// File: error_of.h
//
// pyfleet::testing::ErrorOf: the pyfleet::Error a piece of test code throws.
//
//   Error e = ErrorOf([&] { model({x}); });
//   EXPECT_EQ(e.status().code(), absl::StatusCode::kDeadlineExceeded);
#pragma once

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "pyfleet/pyfleet.h"

namespace pyfleet::testing {

// Runs `body` and returns the pyfleet::Error it throws (fails the test if none).
template <typename Body>
Error ErrorOf(Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a pyfleet::Error";
  return Error(absl::UnknownError("no error"));
}

}  // namespace pyfleet::testing
