// File: access_log.h
//
// AccessLog: pyfleet-serve's structured access log (--access-log): one JSON object per
// line and request, for both protocols, written whole (lines never interleave).
//
//   AccessLog log("-");                    // stdout; or a file path (appended to)
//   AccessLog::Entry e;
//   e.protocol = "http"; e.method = "POST"; e.path = "/v2/models/mlp/infer";
//   e.model = "mlp"; e.status = 200; e.code = "OK"; e.seconds = 0.0021;
//   log.write(e);
//   // {"time":"2024-05-01T10:00:00.123Z","protocol":"http","method":"POST",
//   //  "path":"/v2/models/mlp/infer","model":"mlp","status":200,"code":"OK",
//   //  "duration_ms":2.1,"bytes_in":412,"bytes_out":230,"remote":"127.0.0.1:51234"}
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/synchronization/mutex.h"

namespace pyfleet::serve {

class AccessLog {
 public:
  struct Entry {
    const char* protocol = "http";  // "http" or "grpc"
    std::string method;             // HTTP method, or the gRPC method ("ModelInfer")
    std::string path;               // HTTP path ("" for gRPC)
    std::string model;              // "" when the request names none
    int status = 0;                 // HTTP status (gRPC: the code's number)
    std::string code;               // the canonical code name ("OK", "INVALID_ARGUMENT", ...)
    double seconds = 0;
    uint64_t bytes_in = 0;
    uint64_t bytes_out = 0;
    std::string remote;  // "ip:port" or gRPC's peer string
    std::string id;      // the request's id, if it had one
    std::string error;   // the error message, if any
  };

  // Writes to stdout for "-", else appends to the file `destination`; throws
  // pyfleet::Error (NOT_FOUND / PERMISSION_DENIED...) if it cannot be opened.
  explicit AccessLog(const std::string& destination);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Thread-safe; flushes each line.
  void write(const Entry& entry);
  void flush();

 private:
  absl::Mutex mu_;
  std::FILE* file_;
  bool owned_;
};

}  // namespace pyfleet::serve
