// File: pickle_globals.h
//
// Lists the modules a pickle's globals come from, without unpickling it: walks the
// opcodes of protocols 0-5 and simulates just enough of the unpickler's stack and memo
// to know the strings STACK_GLOBAL consumes.
//
//   absl::StatusOr<std::vector<std::string>> mods = PickleGlobalModules(bytes);
//   // e.g. {"collections", "pf_demo.models", "torch._utils"}
//
// Sources of a global: GLOBAL and INST ("module\nname\n" arguments) and STACK_GLOBAL
// (module and name popped from the stack, pushed by a unicode opcode or fetched from the
// memo). Module names are reported as written in the pickle (a protocol 0-2 pickle may
// say "__builtin__"; Python's unpickler maps such names through _compat_pickle).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace pyfleet::internal {

// PickleGlobalModules()
//
// Sorted, de-duplicated module names of every global the pickle references, up to its
// STOP opcode. InvalidArgument (with the byte offset) for an unknown opcode, a truncated
// argument, a stack underflow, a memo miss or a STACK_GLOBAL whose operands are not
// strings; DataLoss-free: it never reads outside `pickle`.
absl::StatusOr<std::vector<std::string>> PickleGlobalModules(std::string_view pickle);

}  // namespace pyfleet::internal
