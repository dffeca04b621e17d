// File: pickle_globals_fuzzer.cpp
//
// libFuzzer target: PickleGlobalModules (runtime/tools/pickle_globals.h, the opcode
// walker of pyfleet-inspect) on arbitrary bytes. Contract: OK with a sorted list of
// distinct names, each a substring of the input, or InvalidArgument; never a read
// outside the input (ASan).
//
//   scripts/fuzz pickle_globals_fuzzer 60
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tools/pickle_globals.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view pickle(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<std::string>> modules =
      pyfleet::internal::PickleGlobalModules(pickle);
  if (!modules.ok()) {
    PYFLEET_FUZZ_EXPECT_CODE(modules.status(), "PickleGlobalModules",
                             absl::StatusCode::kInvalidArgument);
    return 0;
  }
  PYFLEET_FUZZ_CHECK(std::adjacent_find(modules->begin(), modules->end(),
                                        [](const std::string& a, const std::string& b) {
                                          return !(a < b);
                                        }) == modules->end(),
                     "names not sorted and distinct");
  for (const std::string& m : *modules) {
    PYFLEET_FUZZ_CHECK(pickle.find(m) != std::string_view::npos, "a name that is not in the pickle");
  }
  return 0;
}
