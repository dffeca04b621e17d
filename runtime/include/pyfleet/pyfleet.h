// File: pyfleet.h
//
// The umbrella header of pyfleet's host API: include this one and link pyfleet::pyfleet.
//
//   #include <pyfleet/pyfleet.h>
//
//   auto libs = pyfleet::NativeLibraries::create();
//   auto interp = pyfleet::Interpreter::create(libs);
//   pyfleet::Package package = pyfleet::Package::open("model.pt");
//   pyfleet::Obj model = interp->packageImporter(package).attr("load_pickle")({"model", "model.pkl"});
//   at::Tensor y = model({at::ones({1, 3})}).toTensor();
#pragma once

#include "pyfleet/error.h"
#include "pyfleet/interpreter.h"
#include "pyfleet/native_libraries.h"
#include "pyfleet/obj.h"
#include "pyfleet/package.h"
#include "pyfleet/value.h"
