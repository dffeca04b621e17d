// File: process_stats.h
//
// Wall-clock and memory figures of this process, for the programs that print them
// (pyfleet-demo, pyfleet-bench-interpreters). Header-only; Linux /proc only.
//
//   const double t0 = pyfleet::internal::NowSeconds();
//   ...
//   std::printf("%.2f s, RSS %ld kB, PSS %ld kB\n", pyfleet::internal::NowSeconds() - t0,
//               pyfleet::internal::RssKb(), pyfleet::internal::PssKb());
#pragma once

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>

namespace pyfleet::internal {

// NowSeconds()
//
// Seconds on the steady clock; only differences between two calls mean anything.
inline double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ProcKb()
//
// The value of the line starting with `field` (e.g. "VmRSS:") in the /proc file `file`,
// read as a "Field:   123 kB" line, in kB. Returns -1 if the file cannot be read or has no
// such line.
inline long ProcKb(const char* file, const char* field) {
  std::ifstream f(file);
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(f, line)) {
    if (line.compare(0, n, field) == 0) return std::stol(line.substr(n));
  }
  return -1;
}

// RssKb() / PssKb()
//
// VmRSS counts a page once per mapping of it; Pss counts memory really added (a page
// mapped by k interpreters' copies counts 1/k each), which is what library copies that
// share the original file's pages save. Both in kB, -1 if unavailable.
inline long RssKb() { return ProcKb("/proc/self/status", "VmRSS:"); }
inline long PssKb() { return ProcKb("/proc/self/smaps_rollup", "Pss:"); }

}  // namespace pyfleet::internal
