// File: http_frontend.h
//
// HttpFrontend: the Open Inference Protocol's HTTP/REST API (and GET /metrics) over
// cpp-httplib, in front of a ServerContext.
//
//   HttpFrontend http(context, {/*threads=*/64, /*max_body_bytes=*/64 << 20});
//   int port = http.bind("127.0.0.1", 0);     // 0: the OS picks a free port
//   http.start();                             // serves on its own threads
//   ...
//   http.stop();                              // stops accepting at once
//   http.waitStopped(deadline);               // connections drained (or the deadline)
//
// Routes: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME[/versions/V],
// /v2/models/NAME[/versions/V]/ready, POST /v2/models/NAME[/versions/V]/infer, GET
// /metrics. Errors are {"error": "..."} with the status httpStatusFor() gives (404 for
// an unknown model or route, 413 past --max-body-bytes).
//
// Note [HTTP threads]
// ~~~~~~~~~~~~~~~~~~~
// cpp-httplib serves each connection on one thread of a fixed pool, for as long as the
// connection stays open (keep-alive), and an inference blocks its thread until the
// answer is ready. So the pool must be at least the number of client connections
// expected at once (--http-threads, default 64); a connection beyond it waits to be
// accepted. The blocked threads cost no CPU: the work runs on the host API's workers.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "runtime/tools/serve/server_context.h"

namespace pyfleet::serve {

struct HttpOptions {
  size_t threads = 64;
  size_t max_body_bytes = 64 << 20;
};

// HttpStatusFor()
//
// The HTTP status of an error `code`: 400 for a bad request (and a model that raised,
// UNKNOWN, as the protocol has it), 404 NOT_FOUND, 503 RESOURCE_EXHAUSTED (queue full) and
// UNAVAILABLE, 504 DEADLINE_EXCEEDED, 500 otherwise.
int HttpStatusFor(absl::StatusCode code);

class HttpFrontend {
 public:
  HttpFrontend(ServerContext& context, HttpOptions options);
  ~HttpFrontend();
  HttpFrontend(const HttpFrontend&) = delete;
  HttpFrontend& operator=(const HttpFrontend&) = delete;

  // HttpFrontend::bind()
  //
  // Binds `host`:`port` (0: a free port the OS picks) and returns the port; throws
  // pyfleet::Error UNAVAILABLE if it cannot.
  int bind(const std::string& host, int port);

  // Starts serving (on a thread of its own plus the pool).
  void start();

  // HttpFrontend::stop()
  //
  // Closes the listening socket: no new connection is accepted. Requests in flight
  // finish; a kept-alive connection closes after its current request (or when idle for
  // the keep-alive timeout, 5 s). Returns at once.
  void stop();

  // Waits until every connection thread is done, or `deadline`; true if done.
  bool waitStopped(std::chrono::steady_clock::time_point deadline);

 private:
  class Server;
  void routes();

  ServerContext& context_;
  const HttpOptions options_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::shared_ptr<std::atomic<bool>> done_;
};

}  // namespace pyfleet::serve
