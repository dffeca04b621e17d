// File: serve_metrics.h
//
// ServeMetrics: pyfleet-serve's request counters and latency histograms (per model and
// protocol), and GET /metrics: those plus the host API's pyfleet::Metrics (calls, queue
// depth, busy and stuck interpreters) and the batchers' figures, in the Prometheus text
// exposition format (version 0.0.4; Debian 12 has no C++ Prometheus client, and the
// format is small).
//
//   ServeMetrics metrics({"mlp", "resnet18"});
//   metrics.recordInference("mlp", Protocol::kHttp, absl::StatusCode::kOk, 0.004);
//   std::string text = metrics.render(repository, &manager_metrics, /*in_flight=*/3);
//
// Metric names: pyfleet_serve_* for the server's own, pyfleet_* for the host API's.
// Every method is thread-safe; recording is a few relaxed atomic adds.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "pyfleet/metrics.h"
#include "runtime/tools/serve/model_repository.h"

namespace pyfleet::serve {

enum class Protocol { kHttp = 0, kGrpc = 1 };

class ServeMetrics {
 public:
  // Latency buckets of pyfleet_serve_request_duration_seconds (upper bounds, seconds).
  static constexpr std::array<double, 16> kBuckets = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
                                                      0.2,    0.5,   1,     2,     5,     10,   30,   60};

  explicit ServeMetrics(const std::vector<std::string>& models);
  ~ServeMetrics();

  // ServeMetrics::recordInference()
  //
  // One inference request for `model` (a served model's name; others are not counted
  // per model) answered with `code` after `seconds`.
  void recordInference(const std::string& model, Protocol protocol, absl::StatusCode code, double seconds) noexcept;

  // One HTTP response of `status` (every route), one gRPC call ending with `code`.
  void recordHttpResponse(int status) noexcept;
  void recordGrpcResponse(int code) noexcept;

  // ServeMetrics::render()
  //
  // The exposition text. `manager` may be null (interpreters still starting).
  std::string render(const ModelRepository& repository, const Metrics* manager, int64_t in_flight) const;

 private:
  struct ModelCounters;
  const ModelCounters* find(const std::string& model) const;

  std::vector<std::unique_ptr<ModelCounters>> models_;
  std::array<std::atomic<uint64_t>, 600> http_status_{};
  std::array<std::atomic<uint64_t>, 17> grpc_code_{};
};

}  // namespace pyfleet::serve
