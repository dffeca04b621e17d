// File: host_api_test_env.h
//
// What the host-API tests share: the fixture packages (make_host_packages.py), the
// reference results torch's stock importer gave for them, one InterpreterManager of 4
// interpreters for the tests that need no manager of their own, and comparisons of
// nested IValues.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "pyfleet/pyfleet.h"

namespace pyfleet::testing {

// A fixture package written by make_host_packages.py ("mlp" -> ".../mlp.pt").
inline std::string HostPackage(const std::string& name) {
  return std::string(PYFLEET_HOST_PACKAGES) + "/" + name + ".pt";
}

// The shared manager (4 interpreters), created on first use.
InterpreterManager& SharedManager();

// reference.pt's entry for `name`: {"args": tuple, "kwargs": dict, "expected": value}.
struct Reference {
  std::vector<c10::IValue> args;
  std::unordered_map<std::string, c10::IValue> kwargs;
  c10::IValue expected;
};
Reference LoadReference(InterpreterManager& manager, const std::string& name);

// Asserts `actual` equals `expected` (tensors allclose), naming where they differ.
void ExpectSameIValue(const c10::IValue& expected, const c10::IValue& actual, const std::string& where = "result");

}  // namespace pyfleet::testing
