// File: fuzz_check.h
//
// What a fuzz target does when the code under test breaks its contract: print what and
// why, then abort() so that libFuzzer records the input as a crash. A fuzz target
// accepts every error its unit documents (a clean status) and nothing else.
//
//   absl::StatusOr<ElfFile> elf = ElfFile::parse(bytes, "fuzz.so");
//   if (!elf.ok()) {
//     PYFLEET_FUZZ_EXPECT_CODE(elf.status(), "parse", absl::StatusCode::kInvalidArgument,
//                              absl::StatusCode::kUnimplemented);
//     return 0;
//   }
//   PYFLEET_FUZZ_CHECK(elf->needed().size() < 1000000, "absurd DT_NEEDED count");
#pragma once

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "absl/status/status.h"

namespace pyfleet::fuzz {

[[noreturn]] inline void Fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "\n%s:%d: fuzz check failed: %s\n", file, line, what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Aborts unless `status` is OK or has one of `codes`.
inline void ExpectCode(const char* file, int line, const absl::Status& status, const char* what,
                       std::initializer_list<absl::StatusCode> codes) {
  if (status.ok()) return;
  for (absl::StatusCode c : codes) {
    if (status.code() == c) return;
  }
  Fail(file, line, std::string(what) + " returned an undocumented status: " + status.ToString());
}

}  // namespace pyfleet::fuzz

#define PYFLEET_FUZZ_CHECK(cond, what)                                           \
  do {                                                                           \
    if (!(cond)) ::pyfleet::fuzz::Fail(__FILE__, __LINE__, std::string(what) + " [" #cond "]"); \
  } while (0)

#define PYFLEET_FUZZ_EXPECT_CODE(status, what, ...) \
  ::pyfleet::fuzz::ExpectCode(__FILE__, __LINE__, (status), (what), {__VA_ARGS__})
