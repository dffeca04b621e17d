// File: serve_options.cpp — see serve_options.h.
#include "runtime/tools/serve/serve_options.h"

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace pyfleet::serve {
namespace {

// Model names go into URLs and metric labels unescaped.
bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

absl::Status Bad(absl::string_view flag, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why, " (see --help)"));
}

template <typename T>
absl::Status ParseInt(absl::string_view flag, absl::string_view text, int64_t min, int64_t max, T& out) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < min || v > max) {
    return Bad(flag, absl::StrCat("expected an integer in [", min, ", ", max, "], got '", text, "'"));
  }
  out = static_cast<T>(v);
  return absl::OkStatus();
}

}  // namespace

std::string ServeHelp() {
  return R"(Usage: pyfleet-serve --model NAME=PACKAGE [--model ...] [--interpreters N] [--http-port P] [--grpc-port G] [--max-queue Q] [--timeout-ms T] [flags]

Serves torch.package models over the Open Inference Protocol (KServe v2): HTTP/REST
(/v2/...) and gRPC (inference.GRPCInferenceService), from N isolated interpreters of one
process (one InterpreterManager; every model on every interpreter). A package must hold
model/model.pkl (the model, called with positional tensors) and model/example.pkl (a
tuple of example arguments): the model's metadata comes from the example and one call on
it. GET /metrics answers in the Prometheus text format. SIGTERM (or SIGINT) stops
accepting, finishes the requests in flight (within --drain-timeout-ms) and exits 0.

Flags:
  --model NAME=PACKAGE       serve the package at PACKAGE as model NAME (repeat for more)
  --batch NAME=MAX_BATCH:MAX_DELAY_US
                             batch model NAME dynamically: concurrent requests are joined
                             along dimension 0 (the batch) up to MAX_BATCH rows, waiting at
                             most MAX_DELAY_US for more (repeat for more models)
  --interpreters N           interpreters (default: one per CPU)
  --host ADDR                address to listen on (default: 127.0.0.1)
  --http-port P              HTTP/REST port; 0: any free one; -1: no HTTP (default: 8000)
  --grpc-port G              gRPC port; 0: any free one; -1: no gRPC (default: 8001)
  --max-queue Q              requests waiting for an interpreter beyond this are refused:
                             HTTP 503 / RESOURCE_EXHAUSTED (default: 1024)
  --timeout-ms T             a request's deadline; HTTP 504 / DEADLINE_EXCEEDED past it;
                             0: none (default: 30000). A request's "timeout" parameter
                             (microseconds) and a gRPC deadline can only shorten it
  --max-body-bytes B         largest HTTP body / gRPC message accepted: HTTP 413 beyond
                             (default: 67108864)
  --access-log[=PATH]        one JSON line per request, to stdout or appended to PATH
                             (default: off)
  --http-threads N           HTTP connection threads: at least the number of clients
                             connected at once (default: 64)
  --torch-threads N          torch intra-op threads, for the whole process (default: 1)
  --drain-timeout-ms T       how long SIGTERM waits for requests in flight (default: 15000)
  --help                     print this help and exit
)";
}

absl::StatusOr<ServeOptions> ParseServeOptions(const std::vector<char*>& args) {
  ServeOptions options;
  std::vector<std::pair<std::string, std::string>> batch_flags;
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      options.help = true;
      return options;
    }
    if (!absl::ConsumePrefix(&arg, "--") || arg.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", args[i], "' (see --help)"));
    }
    std::string flag(arg.substr(0, arg.find('=')));
    std::optional<std::string> value;
    if (arg.find('=') != absl::string_view::npos) value = std::string(arg.substr(arg.find('=') + 1));
    if (flag == "access-log") {
      options.access_log = value.value_or("-");
      if (options.access_log->empty()) return Bad(flag, "an empty path");
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size()) return Bad(flag, "needs a value");
      value = args[++i];
    }
    const std::string& v = *value;
    absl::Status status;
    if (flag == "model") {
      std::vector<std::string> parts = absl::StrSplit(v, absl::MaxSplits('=', 1));
      if (parts.size() != 2 || parts[1].empty()) return Bad(flag, absl::StrCat("expected NAME=PACKAGE, got '", v, "'"));
      if (!ValidName(parts[0])) {
        return Bad(flag, absl::StrCat("model name '", parts[0], "' must be 1-128 of A-Z a-z 0-9 _ - ."));
      }
      for (const ModelFlag& m : options.models) {
        if (m.name == parts[0]) return Bad(flag, absl::StrCat("model '", parts[0], "' is given twice"));
      }
      options.models.push_back({parts[0], parts[1]});
    } else if (flag == "batch") {
      std::vector<std::string> parts = absl::StrSplit(v, absl::MaxSplits('=', 1));
      if (parts.size() != 2) return Bad(flag, absl::StrCat("expected NAME=MAX_BATCH:MAX_DELAY_US, got '", v, "'"));
      batch_flags.emplace_back(parts[0], parts[1]);
    } else if (flag == "interpreters") {
      status = ParseInt(flag, v, 1, 1024, options.interpreters);
    } else if (flag == "host") {
      if (v.empty()) return Bad(flag, "an empty address");
      options.host = v;
    } else if (flag == "http-port") {
      status = ParseInt(flag, v, -1, 65535, options.http_port);
    } else if (flag == "grpc-port") {
      status = ParseInt(flag, v, -1, 65535, options.grpc_port);
    } else if (flag == "max-queue") {
      status = ParseInt(flag, v, 1, int64_t{1} << 30, options.max_queue);
    } else if (flag == "timeout-ms") {
      int64_t ms = 0;
      status = ParseInt(flag, v, 0, int64_t{1} << 40, ms);
      options.timeout = std::chrono::milliseconds(ms);
    } else if (flag == "max-body-bytes") {
      status = ParseInt(flag, v, 1, int64_t{1} << 40, options.max_body_bytes);
    } else if (flag == "http-threads") {
      status = ParseInt(flag, v, 2, 65536, options.http_threads);
    } else if (flag == "torch-threads") {
      status = ParseInt(flag, v, 1, 1024, options.torch_threads);
    } else if (flag == "drain-timeout-ms") {
      int64_t ms = 0;
      status = ParseInt(flag, v, 0, int64_t{1} << 40, ms);
      options.drain_timeout = std::chrono::milliseconds(ms);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", flag, " (see --help)"));
    }
    if (!status.ok()) return status;
  }
  if (options.models.empty()) return absl::InvalidArgumentError("no --model NAME=PACKAGE given (see --help)");
  for (const auto& [name, spec] : batch_flags) {
    bool known = false;
    for (const ModelFlag& m : options.models) known = known || m.name == name;
    if (!known) return Bad("batch", absl::StrCat("no --model named '", name, "'"));
    std::vector<std::string> parts = absl::StrSplit(spec, ':');
    BatchConfig config;
    int64_t delay = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &config.max_batch) || config.max_batch < 1 ||
        config.max_batch > 65536 || !absl::SimpleAtoi(parts[1], &delay) || delay < 0 || delay > 60000000) {
      return Bad("batch", absl::StrCat("expected NAME=MAX_BATCH:MAX_DELAY_US (MAX_BATCH 1-65536, MAX_DELAY_US "
                                       "0-60000000), got '", name, "=", spec, "'"));
    }
    config.max_delay = std::chrono::microseconds(delay);
    options.batch[name] = config;
  }
  if (options.http_port < 0 && options.grpc_port < 0) {
    return absl::InvalidArgumentError("--http-port -1 and --grpc-port -1: nothing to serve on");
  }
  return options;
}

}  // namespace pyfleet::serve
