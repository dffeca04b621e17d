// File: fault_test_util.h
//
// What the fault tests (tests/faults) share: the error a body throws, the fault
// functions module (fault_functions.py) registered in a manager, replicating one of its
// functions, and the check every fault test ends with: every interpreter still serves.
//
//   InterpreterManager manager(2);
//   RegisterFaultFunctions(manager);
//   ReplicatedObj exits = ReplicateFaultFunction(manager, "raise_system_exit");
//   Error e = ErrorOf([&] { exits({c10::IValue(3)}); });
//   ExpectEveryInterpreterServes(manager);
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "pyfleet/pyfleet.h"
#include "tests/common/error_of.h"

namespace pyfleet::testing {

// Sets (or, for nullptr, unsets) an environment variable for its lifetime.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// The source of tests/faults/fault_functions.py.
inline std::string FaultFunctionsSource() {
  std::ifstream in(PYFLEET_FAULT_FUNCTIONS);
  std::stringstream source;
  source << in.rdbuf();
  EXPECT_FALSE(source.str().empty()) << "cannot read " << PYFLEET_FAULT_FUNCTIONS;
  return source.str();
}

// Makes module `fault_functions` importable in every interpreter of `manager`.
inline void RegisterFaultFunctions(InterpreterManager& manager) {
  manager.registerModuleSource("fault_functions", FaultFunctionsSource());
}

// fault_functions.<name>, replicated to every interpreter of `manager`.
inline ReplicatedObj ReplicateFaultFunction(InterpreterManager& manager, const char* name) {
  InterpreterSession session = manager.acquireOne();
  return session.createMovable(session.global("fault_functions", name));
}

// Every interpreter of `manager` runs Python and torch and answers a call.
inline void ExpectEveryInterpreterServes(InterpreterManager& manager) {
  for (const Interpreter& each : manager.allInstances()) {
    InterpreterSession session = each.acquireSession();
    Interpreter& interp = session.interpreter();
    SCOPED_TRACE("interpreter " + std::to_string(interp.index()));
    EXPECT_NO_THROW(interp.run("import torch\nassert int(torch.ones(3).sum()) == 3\n"));
    EXPECT_EQ(interp.global("fault_functions", "add")({c10::IValue(2), c10::IValue(3)}).toIValue().toInt(), 5);
  }
}

}  // namespace pyfleet::testing
