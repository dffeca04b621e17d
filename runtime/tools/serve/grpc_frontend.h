// File: grpc_frontend.h
//
// GrpcFrontend: the Open Inference Protocol's gRPC API (inference.GRPCInferenceService,
// proto/grpc_predict_v2.proto) over Debian's gRPC, in front of a ServerContext. It uses
// gRPC's callback API: an inference holds no thread while it waits for an interpreter;
// the host API's completion callback finishes the call.
//
//   GrpcFrontend grpc(context, /*max_message_bytes=*/64 << 20);
//   int port = grpc.start("127.0.0.1", 0);   // 0: a free port the OS picks
//   ...
//   grpc.shutdown(deadline);   // no new calls; waits for those in flight until deadline
//
// ModelInfer takes inputs as raw_input_contents (one entry per input) or as typed
// contents (FP16 only raw), and answers with raw_output_contents. Errors are the call's
// status, the codes as the host API gives them (a model that raised: UNKNOWN with
// "<ExceptionType>: <message>"; queue full: RESOURCE_EXHAUSTED; deadline:
// DEADLINE_EXCEEDED). A call's deadline is the earliest of the client's, the request's
// "timeout" parameter (int64 microseconds) and --timeout-ms.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "runtime/tools/serve/server_context.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace pyfleet::serve {

class GrpcFrontend {
 public:
  GrpcFrontend(ServerContext& context, size_t max_message_bytes);
  ~GrpcFrontend();
  GrpcFrontend(const GrpcFrontend&) = delete;
  GrpcFrontend& operator=(const GrpcFrontend&) = delete;

  // GrpcFrontend::start()
  //
  // Listens on `host`:`port` (0: a free port) and serves; returns the port. Throws
  // pyfleet::Error UNAVAILABLE if it cannot listen (a port in use is refused, not shared:
  // SO_REUSEPORT is off).
  int start(const std::string& host, int port);

  // GrpcFrontend::shutdown()
  //
  // Refuses new calls, waits for those in flight until `deadline`, then cancels the
  // rest. Idempotent.
  void shutdown(std::chrono::steady_clock::time_point deadline);

 private:
  class Service;
  ServerContext& context_;
  const size_t max_message_bytes_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace pyfleet::serve
