// File: pyfleet.h
//
// The umbrella header of pyfleet's host API: include this one and link pyfleet::pyfleet.
//
//   #include <pyfleet/pyfleet.h>
//
//   pyfleet::InterpreterManager manager(4);
//   pyfleet::Package package = manager.loadPackage("model.pt");
//   pyfleet::ReplicatedObj model = package.loadPickle("model", "model.pkl");
//   at::Tensor y = model({at::ones({1, 3})}).toTensor();       // from any thread
//
// Lower level, one interpreter at a time:
//
//   auto interp = pyfleet::Interpreter::create(pyfleet::NativeLibraries::create());
//   pyfleet::Obj importer = interp->packageImporter(pyfleet::Package::open("model.pt"));
#pragma once

#include "pyfleet/call_options.h"
#include "pyfleet/environment.h"
#include "pyfleet/error.h"
#include "pyfleet/interpreter.h"
#include "pyfleet/interpreter_manager.h"
#include "pyfleet/interpreter_session.h"
#include "pyfleet/metrics.h"
#include "pyfleet/native_libraries.h"
#include "pyfleet/obj.h"
#include "pyfleet/package.h"
#include "pyfleet/python_method_wrapper.h"
#include "pyfleet/replicated_obj.h"
#include "pyfleet/security_policy.h"
#include "pyfleet/value.h"
