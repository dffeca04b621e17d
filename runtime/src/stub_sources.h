// File: stub_sources.h
//
// Python sources from stubs/ that the host itself hands to interpreters (as module
// sources), embedded at build time (runtime/CMakeLists.txt generates stub_sources.cpp):
// Python lives in stubs/*.py, never in a C++ string literal (STYLE.md §7.5).
#pragma once

namespace pyfleet::internal {

// stubs/GetArgumentNamesModule.py: registered in every manager under that name, as
// torch::deploy does (PythonMethodWrapper uses it).
extern const char kGetArgumentNamesSource[];

}  // namespace pyfleet::internal
