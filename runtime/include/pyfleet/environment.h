// File: environment.h
//
// pyfleet::Environment: what every interpreter of a manager starts with beyond the
// defaults: extra Python paths (a virtualenv's site-packages, a folder of modules), a
// security policy (security_policy.h), and a hook run once per interpreter after it
// started. The names are torch::deploy's (the policy is pyfleet's own).
//
//   auto env = std::make_shared<pyfleet::PathEnvironment>("/srv/venv/lib/python3.11/site-packages");
//   pyfleet::InterpreterManager manager(4, env);
//
//   auto locked = std::make_shared<pyfleet::NoopEnvironment>();
//   locked->setSecurityPolicy(pyfleet::SecurityPolicy{});  // no processes, network, writes
//
//   class WarmUp : public pyfleet::Environment {
//     void configureInterpreter(pyfleet::Interpreter* interp) override {
//       interp->run("import torch\ntorch.set_num_threads(1)\n");
//     }
//   };
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pyfleet/export.h"
#include "pyfleet/security_policy.h"

namespace pyfleet {

class Interpreter;

class PYFLEET_API Environment {
 public:
  Environment() = default;
  explicit Environment(std::vector<std::string> extra_python_paths)
      : extra_python_paths_(std::move(extra_python_paths)) {}
  virtual ~Environment();

  // Environment::getExtraPythonPaths()
  //
  // Appended to every interpreter's sys.path (after Debian python3's own paths).
  virtual const std::vector<std::string>& getExtraPythonPaths() { return extra_python_paths_; }

  // Environment::configureInterpreter()
  //
  // Runs once per interpreter, after it started and imported torch, before it serves a
  // call; on the thread that created it, possibly several interpreters at once (make it
  // thread-safe). An exception fails the manager's construction: a pyfleet::Error as it
  // is, anything else as a pyfleet::Error (UNKNOWN) carrying its what().
  virtual void configureInterpreter(Interpreter* interp) = 0;

  // Environment::securityPolicy()
  //
  // The policy every interpreter runs under (see security_policy.h), installed right
  // after its CPython starts: `import torch` and configureInterpreter() already run
  // under it, so what they need must be allowed. nullopt (the default): no policy.
  virtual std::optional<SecurityPolicy> securityPolicy() const { return security_policy_; }
  // Sets what securityPolicy() returns; call it before the manager is constructed.
  void setSecurityPolicy(SecurityPolicy policy) { security_policy_ = std::move(policy); }

 private:
  std::vector<std::string> extra_python_paths_;
  std::optional<SecurityPolicy> security_policy_;
};

// Adds one folder to sys.path.
class PYFLEET_API PathEnvironment : public Environment {
 public:
  explicit PathEnvironment(std::string path) : Environment({std::move(path)}) {}
  void configureInterpreter(Interpreter*) override {}
};

// Changes nothing: the default.
class PYFLEET_API NoopEnvironment : public Environment {
 public:
  void configureInterpreter(Interpreter*) override {}
};

}  // namespace pyfleet
