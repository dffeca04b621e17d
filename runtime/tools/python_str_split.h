// File: python_str_split.h
//
// Python's str.split(sep) for one separator character, which torch.package's path code
// (Directory, GlobGroup) relies on; the C++ ports of both split with it so that empty
// segments come out exactly as in torch.
//
//   PythonStrSplit("a//b/", '/');   // {"a", "", "b", ""}
//   PythonStrSplit("", '/');        // {""}
#pragma once

#include <string_view>
#include <vector>

namespace pyfleet::internal {

// PythonStrSplit()
//
// Splits `s` at every `sep`: n separators give n + 1 (possibly empty) parts, as
// Python's `s.split(sep)` does. The parts view `s`, which must outlive them.
std::vector<std::string_view> PythonStrSplit(std::string_view s, char sep);

}  // namespace pyfleet::internal
