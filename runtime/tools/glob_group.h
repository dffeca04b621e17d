// File: glob_group.h
//
// torch.package's Bazel-style glob matching (torch/package/glob_group.py, GlobGroup),
// ported to C++ so that pyfleet-inspect filters records exactly as
// PackageImporter.file_structure(include=..., exclude=...) does.
//
//   absl::StatusOr<GlobGroup> g = GlobGroup::Create({"pf_demo/**"}, {"**/*.pkl"}, '/');
//   if (g.ok() && g->matches("pf_demo/util/maths.py")) { ... }
//
// A candidate is split into segments by the separator; so is each pattern. A pattern
// segment is a literal (matches exactly), a literal with `*` wildcards (each matches any
// run of non-separator characters, possibly empty), or `**` alone (zero or more whole,
// non-empty segments). A candidate matches the group if it fully matches any include
// pattern and no exclude pattern. Only `*` is special: `?`, `[` and `.` are literals,
// as torch escapes everything else with re.escape.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace pyfleet::internal {

class GlobGroup {
 public:
  // GlobGroup::Create()
  //
  // Compiles the patterns. InvalidArgument, with torch's message "** can only appear as
  // an entire path segment", if a segment holds `**` next to other characters.
  static absl::StatusOr<GlobGroup> Create(std::vector<std::string> include,
                                          std::vector<std::string> exclude, char separator);

  // GlobGroup::matches()
  //
  // True if `candidate` matches an include pattern and no exclude pattern.
  bool matches(std::string_view candidate) const;

 private:
  using Pattern = std::vector<std::string>;  // segments
  GlobGroup(std::vector<Pattern> include, std::vector<Pattern> exclude, char separator)
      : include_(std::move(include)), exclude_(std::move(exclude)), separator_(separator) {}
  bool matchesPattern(const Pattern& pattern, const std::vector<std::string_view>& segments) const;

  std::vector<Pattern> include_;
  std::vector<Pattern> exclude_;
  char separator_;
};

// True if `text` matches `glob`, where each `*` matches any (possibly empty) run of
// characters and every other character matches itself. Exposed for tests.
bool WildcardMatch(std::string_view glob, std::string_view text);

}  // namespace pyfleet::internal
