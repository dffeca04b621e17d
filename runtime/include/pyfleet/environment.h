// File: environment.h
//
// pyfleet::Environment: what every interpreter of a manager starts with beyond the
// defaults: extra Python paths (a virtualenv's site-packages, a folder of modules) and a
// hook run once per interpreter after it started. The names are torch::deploy's.
//
//   auto env = std::make_shared<pyfleet::PathEnvironment>("/srv/venv/lib/python3.11/site-packages");
//   pyfleet::InterpreterManager manager(4, env);
//
//   class WarmUp : public pyfleet::Environment {
//     void configureInterpreter(pyfleet::Interpreter* interp) override {
//       interp->run("import torch\ntorch.set_num_threads(1)\n");
//     }
//   };
#pragma once

#include <string>
#include <vector>

#include "pyfleet/export.h"

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
  // thread-safe). An exception fails the manager's construction with that error.
  virtual void configureInterpreter(Interpreter* interp) = 0;

 private:
  std::vector<std::string> extra_python_paths_;
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
