// File: python_str_split.cpp
//
// See python_str_split.h.
#include "runtime/tools/python_str_split.h"

namespace pyfleet::internal {

std::vector<std::string_view> PythonStrSplit(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, at - start));
    start = at + 1;
  }
}

}  // namespace pyfleet::internal
