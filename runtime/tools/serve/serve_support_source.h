// File: serve_support_source.h
//
// serve_support.py, embedded at build time (serve/CMakeLists.txt generates the .cpp):
// Python lives in .py files, never in a C++ string literal (STYLE.md §7.5). pyfleet-serve
// registers it in every interpreter as module kServeSupportModule.
#pragma once

namespace pyfleet::serve {

inline constexpr char kServeSupportModule[] = "pyfleet_serve_support";
extern const char kServeSupportSource[];

}  // namespace pyfleet::serve
