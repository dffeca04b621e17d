// File: pyfleet_exec.cpp
//
// pyfleet-exec: runs Python code in N pyfleet interpreters of one process at once, one
// host thread each, and prints each interpreter's output prefixed with its index. It is
// how a user checks that a model's dependencies work under pyfleet.
//
//   pyfleet-exec --interpreters 4 --code 'import torch; print(torch.ones(2).sum())'
//   pyfleet-exec --interpreters 2 script.py
//
// Exit status 0 if every interpreter ran the code without an exception, 1 if any
// raised (its traceback is printed, prefixed), 2 for a usage error.
#include <atomic>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "pyfleet/interpreter.h"
#include "runtime/tools/tool_main.h"

ABSL_FLAG(int, interpreters, 1, "number of interpreters, each run by its own host thread");
ABSL_FLAG(std::string, code, "", "Python code to run (instead of FILE)");

namespace {

constexpr pyfleet::tools::ToolInfo kTool = {
    "pyfleet-exec", "pyfleet-exec --interpreters N (--code CODE | FILE)",
    "Runs Python code in N pyfleet interpreters of one process at once, one host thread each;\n"
    "each interpreter's output is prefixed with its index. Exit status: 0 if every\n"
    "interpreter ran the code without an exception, 1 if any raised, 2 for a usage error.",
    __FILE__};

// Python string literal for `s` (repr-style, safe for any bytes of UTF-8 text).
std::string PyLiteral(const std::string& s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

void PrintPrefixed(const std::string& prefix, const std::string& text) {
  std::string block;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty()) absl::StrAppend(&block, prefix, line, "\n");
  }
  std::fputs(block.c_str(), stderr);
  std::fflush(stderr);
}

int Run(const std::vector<char*>& positional) {
  const int n = absl::GetFlag(FLAGS_interpreters);
  std::string code = absl::GetFlag(FLAGS_code);
  std::string filename = "<code>";
  if (n < 1 || n > 64) {
    std::fprintf(stderr, "pyfleet-exec: --interpreters must be between 1 and 64, got %d\n", n);
    return 2;
  }
  if (code.empty() == (positional.size() != 2)) {
    std::fprintf(stderr, "Usage: %s\n", kTool.usage);
    return 2;
  }
  if (code.empty()) {
    filename = positional[1];
    std::ifstream in(filename, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "pyfleet-exec: cannot read %s\n", filename.c_str());
      return 2;
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    code = buffer.str();
  }

  std::shared_ptr<pyfleet::NativeLibraries> libs = pyfleet::NativeLibraries::create();
  std::atomic<int> failures{0};
  std::vector<std::unique_ptr<pyfleet::Interpreter>> interpreters(n);
  std::vector<std::exception_ptr> unexpected(n);  // not a pyfleet::Error: rethrown below
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      const std::string prefix = absl::StrCat("[", i, "] ");
      try {
        interpreters[i] = pyfleet::Interpreter::create(libs);
        pyfleet::Interpreter& interp = *interpreters[i];
        interp.run(absl::StrCat("import sys, _pyfleet_io\n",
                                "sys.stdout = _pyfleet_io.PrefixWriter(sys.__stdout__, ", PyLiteral(prefix), ")\n",
                                "sys.stderr = _pyfleet_io.PrefixWriter(sys.__stderr__, ", PyLiteral(prefix), ")\n",
                                "sys.argv = [", PyLiteral(filename), "]\n"),
                   "<pyfleet-exec>");
        try {
          interp.run(code, filename);
        } catch (const pyfleet::Error& e) {
          failures.fetch_add(1);
          interp.run("sys.stdout.flush()\nsys.stderr.flush()\n", "<pyfleet-exec>");
          PrintPrefixed(prefix, e.traceback().empty() ? e.what() : e.traceback());
          return;
        }
        interp.run("sys.stdout.flush()\nsys.stderr.flush()\n", "<pyfleet-exec>");
      } catch (const pyfleet::Error& e) {
        failures.fetch_add(1);
        PrintPrefixed(prefix, e.what());
      } catch (...) {
        failures.fetch_add(1);
        unexpected[i] = std::current_exception();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::fflush(stdout);
  for (std::exception_ptr& e : unexpected) {
    if (e) std::rethrow_exception(e);
  }
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return pyfleet::tools::ToolMain(argc, argv, kTool, Run); }
