// File: tool_main.h
//
// The main() around every pyfleet command-line tool (pyfleet-exec, pyfleet-demo,
// pyfleet-inspect, pyfleet-bench-interpreters):
//   - `--help` (or `-h`) prints a "Usage:" line, the tool's description and the flags
//     defined in the tool's own source file, and exits 0. absl alone matches flags to a
//     program by file name ("pyfleet-exec" vs pyfleet_exec.cpp) and printed "No flags
//     matched"; its usage config is set here so that its other help modes agree.
//   - No exception escapes: pyfleet::Error (its what() carries the status code, the
//     Python type and traceback), any other std::exception or anything else thrown is
//     printed to stderr with its type, and the tool exits 1.
//
//   ABSL_FLAG(int, interpreters, 1, "number of interpreters");
//   constexpr pyfleet::tools::ToolInfo kTool = {
//       "pyfleet-exec", "pyfleet-exec --interpreters N (--code CODE | FILE)",
//       "Runs Python code in N interpreters of one process.", __FILE__};
//   int main(int argc, char** argv) {
//     return pyfleet::tools::ToolMain(argc, argv, kTool, [](const std::vector<char*>& args) {
//       return Run(args);  // args: the positional arguments, args[0] the program
//     });
//   }
//
// An exception thrown on another thread never reaches ToolMain: a tool's worker threads
// catch their own (std::exception_ptr) and rethrow on the main thread.
#pragma once

#include <exception>
#include <ostream>
#include <vector>

#include "absl/functional/function_ref.h"

namespace pyfleet::tools {

struct ToolInfo {
  const char* name;         // "pyfleet-exec": prefixes every message
  const char* usage;        // the synopsis after "Usage: "
  const char* description;  // one paragraph for --help
  // __FILE__ of the source file that defines the tool's ABSL_FLAGs: ToolMain then parses
  // the command line with absl and answers --help. nullptr: the tool parses argv itself
  // (and prints its own help); the body gets argv unchanged.
  const char* flags_file;
};

// ToolMain()
//
// Runs body(args) and returns its exit status; see the file comment. With flags_file,
// `args` holds what absl::ParseCommandLine leaves (argv[0] and positional arguments).
int ToolMain(int argc, char** argv, const ToolInfo& tool,
             absl::FunctionRef<int(const std::vector<char*>& args)> body) noexcept;

// PrintHelp()
//
// The --help text: "Usage: <usage>", the description, then each flag defined in
// tool.flags_file with its help text and default.
void PrintHelp(std::ostream& out, const ToolInfo& tool);

// ReportException()
//
// Prints "<tool>: error: <type>: <what()>" for `error` to stderr (type demangled, e.g.
// "pyfleet::Error"; "unknown exception" for a non-std::exception).
void ReportException(const char* tool, std::exception_ptr error) noexcept;

}  // namespace pyfleet::tools
