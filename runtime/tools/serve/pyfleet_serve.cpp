// File: pyfleet_serve.cpp
//
// pyfleet-serve: serves torch.package models over the Open Inference Protocol (KServe
// v2), HTTP/REST and gRPC, from N isolated interpreters of one process. A tool over the
// host API: one pyfleet::InterpreterManager, each model a pyfleet::ReplicatedObj called
// through ReplicatedObj::submit (deadlines, the bounded queue, metrics).
//
//   pyfleet-serve --model resnet18=B/examples/resnet18.pt --interpreters 2
//   curl -s localhost:8000/v2/models/resnet18          # metadata
//
// Start-up: the front ends listen first (GET /v2/health/live answers at once, ready says
// "loading"), then the interpreters start and the models load; a model that fails to
// load leaves the server not ready, saying why, while the others serve.
//
// Note [Graceful shutdown]
// ~~~~~~~~~~~~~~~~~~~~~~~~
// SIGTERM and SIGINT are blocked in every thread (the mask is set before any thread
// exists) and taken by sigwait() on the main thread. Then: readiness fails at once; the
// HTTP listener closes and gRPC refuses new calls; requests in flight run to the end and
// their answers are written; kept-alive HTTP connections close after their current
// request. When both front ends have drained (bounded by --drain-timeout-ms) the models
// stop and the process exits 0; past the bound it exits 1, saying how many requests were
// abandoned. The process exits with _exit rather than by finalizing the interpreters: a
// server has nothing to flush there, finalizing N CPythons holding torch takes seconds,
// and pyfleet leaves no files behind either way (README, "Behaviour worth knowing").
#include <ATen/Parallel.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pyfleet/error.h"
#include "pyfleet/interpreter.h"
#include "pyfleet/interpreter_manager.h"
#include "runtime/tools/serve/grpc_frontend.h"
#include "runtime/tools/serve/http_frontend.h"
#include "runtime/tools/serve/serve_options.h"
#include "runtime/tools/serve/serve_support_source.h"
#include "runtime/tools/serve/server_context.h"
#include "runtime/tools/tool_main.h"

namespace pyfleet::serve {
namespace {

constexpr tools::ToolInfo kTool = {
    "pyfleet-serve", "pyfleet-serve --model NAME=PACKAGE [--model ...] [flags]",
    "Serves torch.package models over the Open Inference Protocol (HTTP/REST and gRPC).",
    /*flags_file=*/nullptr};

std::string HostPort(const std::string& host, int port) {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

void Say(const std::string& line) {
  std::printf("pyfleet-serve: %s\n", line.c_str());
  std::fflush(stdout);
}

int Run(const std::vector<char*>& args) {
  absl::StatusOr<ServeOptions> parsed = ParseServeOptions(args);
  ThrowIfError(parsed.status());
  const ServeOptions& options = *parsed;
  if (options.help) {
    std::fputs(ServeHelp().c_str(), stdout);
    return 0;
  }

  // Note [Graceful shutdown]: before any thread exists.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error on its socket, not a signal

  at::set_num_threads(options.torch_threads);

  ServerContext context;
  context.timeout = options.timeout;
  std::vector<std::string> names;
  for (const ModelFlag& m : options.models) {
    names.push_back(m.name);
    auto batch = options.batch.find(m.name);
    context.repository.add(std::make_unique<ServedModel>(
        m.name, m.path, batch == options.batch.end() ? std::nullopt : std::optional<BatchConfig>(batch->second),
        options.max_queue));
  }
  context.metrics = std::make_unique<ServeMetrics>(names);
  if (options.access_log) context.access_log = std::make_unique<AccessLog>(*options.access_log);

  std::unique_ptr<HttpFrontend> http;
  std::unique_ptr<GrpcFrontend> grpc;
  if (options.http_port >= 0) {
    http = std::make_unique<HttpFrontend>(context, HttpOptions{options.http_threads, options.max_body_bytes});
    const int port = http->bind(options.host, options.http_port);
    http->start();
    Say(absl::StrCat("HTTP on http://", HostPort(options.host, port)));
  }
  if (options.grpc_port >= 0) {
    grpc = std::make_unique<GrpcFrontend>(context, options.max_body_bytes);
    const int port = grpc->start(options.host, options.grpc_port);
    Say(absl::StrCat("gRPC on ", HostPort(options.host, port)));
  }

  const size_t interpreters =
      options.interpreters > 0 ? options.interpreters : std::max<unsigned>(std::thread::hardware_concurrency(), 1);
  ManagerOptions manager_options;
  manager_options.max_queue = options.max_queue;
  const auto start = std::chrono::steady_clock::now();
  InterpreterManager manager(interpreters, std::make_shared<NoopEnvironment>(), manager_options);
  manager.registerModuleSource(kServeSupportModule, kServeSupportSource);
  context.manager.store(&manager, std::memory_order_release);
  Say(absl::StrCat(interpreters, " interpreters started in ",
                   absl::StrFormat("%.2f", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()),
                   " s (torch intra-op threads: ", at::get_num_threads(), ")"));
  context.repository.loadAll(manager);
  const absl::Status ready = context.repository.ready();
  Say(ready.ok() ? std::string("ready") : absl::StrCat("NOT ready: ", ready.message()));

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);

  // Note [Graceful shutdown].
  Say(absl::StrCat(signal_number == SIGTERM ? "SIGTERM" : "SIGINT", ": draining ",
                   context.in_flight.load(std::memory_order_relaxed), " requests in flight"));
  context.repository.beginShutdown();
  const auto deadline = std::chrono::steady_clock::now() + options.drain_timeout;
  if (http) http->stop();
  std::thread grpc_drain([&] {
    if (grpc) grpc->shutdown(deadline);
  });
  const bool http_drained = !http || http->waitStopped(deadline);
  grpc_drain.join();
  const int64_t abandoned = context.in_flight.load(std::memory_order_acquire);
  if (abandoned > 0) {
    Say(absl::StrCat("drain timed out after ", options.drain_timeout.count(), " ms: ", abandoned,
                     " requests abandoned"));
    if (context.access_log) context.access_log->flush();
    std::fflush(stderr);
    _exit(1);
  }
  // Every handler returned; an HTTP connection still open past the deadline is idle in
  // keep-alive or writing its last answer: give the writes a moment.
  if (!http_drained) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  context.repository.stopAll();
  if (context.access_log) context.access_log->flush();
  Say("stopped");
  std::fflush(stderr);
  _exit(0);
}

}  // namespace
}  // namespace pyfleet::serve

int main(int argc, char** argv) {
  return pyfleet::tools::ToolMain(argc, argv, pyfleet::serve::kTool, pyfleet::serve::Run);
}
