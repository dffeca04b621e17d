#include "runtime/tools/tool_main.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <typeinfo>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace pyfleet::tools {
namespace {

absl::string_view Basename(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

// Whether `file` (a flag's __FILE__ as absl recorded it) is the tool's flags file. Compared
// by base name: absl may normalize the path.
bool IsToolFile(absl::string_view file, const ToolInfo& tool) {
  return tool.flags_file != nullptr && Basename(file) == Basename(tool.flags_file);
}

// absl's own help modes (--helpshort, --help=SUBSTR, ...) list the tool's flags too.
void ConfigureAbslUsage(const ToolInfo& tool) {
  absl::SetProgramUsageMessage(absl::StrCat("Usage: ", tool.usage, "\n\n", tool.description));
  absl::FlagsUsageConfig config;
  const std::string flags_file = tool.flags_file;
  auto is_tool_file = [flags_file](absl::string_view file) { return Basename(file) == Basename(flags_file); };
  config.contains_helpshort_flags = is_tool_file;
  config.contains_help_flags = is_tool_file;
  absl::SetFlagsUsageConfig(config);
}

// --help, -help, -h or --h before any "--" (absl 20220623 exits 1 after printing help).
bool WantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") return false;
    if (arg == "--help" || arg == "-help" || arg == "-h" || arg == "--h") return true;
  }
  return false;
}

std::string Demangle(const char* name) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && demangled != nullptr ? demangled : name;
  std::free(demangled);
  return out;
}

}  // namespace

void PrintHelp(std::ostream& out, const ToolInfo& tool) {
  out << "Usage: " << tool.usage << "\n\n" << tool.description << "\n";
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsToolFile(flag->Filename(), tool)) flags.push_back(flag);
  }
  if (flags.empty()) return;
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) { return a->Name() < b->Name(); });
  out << "\nFlags:\n";
  size_t width = std::string("--help").size();
  for (const absl::CommandLineFlag* flag : flags) width = std::max(width, flag->Name().size() + 2);
  auto line = [&](const std::string& name, const std::string& help) {
    out << "  " << name << std::string(width - name.size() + 2, ' ') << help << "\n";
  };
  for (const absl::CommandLineFlag* flag : flags) {
    std::string default_value = flag->DefaultValue();
    if (flag->IsOfType<std::string>()) default_value = absl::StrCat("\"", default_value, "\"");
    // An empty string's meaning is in the help text ("default: make the demo package").
    const bool show_default = default_value != "\"\"";
    line(absl::StrCat("--", flag->Name()),
         show_default ? absl::StrCat(flag->Help(), " (default: ", default_value, ")") : flag->Help());
  }
  line("--help", "print this help and exit");
}

void ReportException(const char* tool, std::exception_ptr error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::string what = e.what();  // a Python traceback ends in a newline
    while (!what.empty() && what.back() == '\n') what.pop_back();
    std::fprintf(stderr, "%s: error: %s: %s\n", tool, Demangle(typeid(e).name()).c_str(), what.c_str());
  } catch (...) {
    std::fprintf(stderr, "%s: error: unknown exception\n", tool);
  }
  std::fflush(stderr);
}

int ToolMain(int argc, char** argv, const ToolInfo& tool,
             absl::FunctionRef<int(const std::vector<char*>& args)> body) noexcept {
  try {
    std::vector<char*> args(argv, argv + argc);
    if (tool.flags_file != nullptr) {
      ConfigureAbslUsage(tool);
      if (WantsHelp(argc, argv)) {
        PrintHelp(std::cout, tool);
        std::cout.flush();
        return 0;
      }
      args = absl::ParseCommandLine(argc, argv);
    }
    const int status = body(args);
    std::fflush(stdout);
    return status;
  } catch (...) {
    std::fflush(stdout);
    ReportException(tool.name, std::current_exception());
    return 1;
  }
}

}  // namespace pyfleet::tools
