// File: serve_options.h
//
// pyfleet-serve's command line. The flags are spelled with hyphens and --model / --batch
// repeat, which absl flags cannot express, so the tool parses argv itself (ToolMain with
// no flags file, see runtime/tools/tool_main.h) and prints its own --help.
//
//   absl::StatusOr<ServeOptions> options = ParseServeOptions(args);  // args[0]: program
//   // pyfleet-serve --model mlp=mlp.pt --model r18=resnet18.pt --batch r18=8:2000
//   //               --interpreters 2 --http-port 0 --grpc-port -1
//
// Every flag takes its value as "--flag VALUE" or "--flag=VALUE", except --access-log,
// whose file must be given as --access-log=PATH (bare: stdout).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tools/serve/dynamic_batcher.h"

namespace pyfleet::serve {

struct ModelFlag {
  std::string name;
  std::string path;
};

struct ServeOptions {
  std::vector<ModelFlag> models;              // --model NAME=PACKAGE (at least one)
  std::map<std::string, BatchConfig> batch;   // --batch NAME=MAX_BATCH:MAX_DELAY_US
  size_t interpreters = 0;                    // --interpreters; 0: one per CPU
  std::string host = "127.0.0.1";             // --host
  int http_port = 8000;                       // --http-port; 0: any free port; -1: off
  int grpc_port = 8001;                       // --grpc-port; 0: any free port; -1: off
  size_t max_queue = 1024;                    // --max-queue
  std::chrono::milliseconds timeout{30000};   // --timeout-ms; 0: none
  size_t max_body_bytes = 64 << 20;           // --max-body-bytes
  std::optional<std::string> access_log;      // --access-log[=PATH]; "-": stdout
  size_t http_threads = 64;                   // --http-threads
  int torch_threads = 1;                      // --torch-threads (intra-op, process-wide)
  std::chrono::milliseconds drain_timeout{15000};  // --drain-timeout-ms
  bool help = false;                          // --help / -h
};

// ParseServeOptions()
//
// The options `args` (argv, args[0] the program) give; INVALID_ARGUMENT naming the flag
// for an unknown flag, a missing or malformed value, a duplicate model name, a --batch
// for a model not given, or no --model at all (unless --help).
absl::StatusOr<ServeOptions> ParseServeOptions(const std::vector<char*>& args);

// The --help text.
std::string ServeHelp();

}  // namespace pyfleet::serve
