// File: glob_group.cpp
//
// See glob_group.h. torch compiles each pattern to a regex and calls fullmatch on
// separator + candidate; matching segment lists with a small dynamic programme gives the
// same answers: a literal segment of the pattern consumes exactly one candidate segment
// (which may be empty), `**` consumes zero or more non-empty ones.
#include "runtime/tools/glob_group.h"

#include "absl/status/status.h"
#include "runtime/tools/python_str_split.h"

namespace pyfleet::internal {

bool WildcardMatch(std::string_view glob, std::string_view text) {
  size_t g = 0, t = 0;
  size_t star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (g < glob.size() && glob[g] == '*') {
      star = g++;
      resume = t;
    } else if (g < glob.size() && glob[g] == text[t]) {
      ++g;
      ++t;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

absl::StatusOr<GlobGroup> GlobGroup::Create(std::vector<std::string> include,
                                            std::vector<std::string> exclude, char separator) {
  auto compile = [separator](const std::vector<std::string>& patterns)
      -> absl::StatusOr<std::vector<Pattern>> {
    std::vector<Pattern> out;
    for (const std::string& p : patterns) {
      Pattern segments;
      for (std::string_view seg : PythonStrSplit(p, separator)) segments.emplace_back(seg);
      for (const std::string& s : segments) {
        if (s != "**" && s.find("**") != std::string::npos) {
          return absl::InvalidArgumentError("** can only appear as an entire path segment");
        }
      }
      out.push_back(std::move(segments));
    }
    return out;
  };
  absl::StatusOr<std::vector<Pattern>> inc = compile(include);
  if (!inc.ok()) return inc.status();
  absl::StatusOr<std::vector<Pattern>> exc = compile(exclude);
  if (!exc.ok()) return exc.status();
  return GlobGroup(*std::move(inc), *std::move(exc), separator);
}

bool GlobGroup::matchesPattern(const Pattern& pattern,
                               const std::vector<std::string_view>& segments) const {
  // ok[i][j]: pattern[i:] matches segments[j:]. Filled backwards.
  const size_t np = pattern.size(), ns = segments.size();
  std::vector<std::vector<char>> ok(np + 1, std::vector<char>(ns + 1, 0));
  ok[np][ns] = 1;
  for (size_t i = np; i-- > 0;) {
    for (size_t j = ns + 1; j-- > 0;) {
      if (pattern[i] == "**") {
        ok[i][j] = ok[i + 1][j] || (j < ns && !segments[j].empty() && ok[i][j + 1]);
      } else {
        ok[i][j] = j < ns && ok[i + 1][j + 1] && WildcardMatch(pattern[i], segments[j]);
      }
    }
  }
  return ok[0][0];
}

bool GlobGroup::matches(std::string_view candidate) const {
  const std::vector<std::string_view> segments = PythonStrSplit(candidate, separator_);
  bool included = false;
  for (const Pattern& p : include_) {
    if (matchesPattern(p, segments)) {
      included = true;
      break;
    }
  }
  if (!included) return false;
  for (const Pattern& p : exclude_) {
    if (matchesPattern(p, segments)) return false;
  }
  return true;
}

}  // namespace pyfleet::internal
