// File: serve_metrics.cpp — see serve_metrics.h.
#include "runtime/tools/serve/serve_metrics.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace pyfleet::serve {
namespace {

constexpr int kCodes = 17;  // absl::StatusCode 0..16
constexpr const char* kProtocolNames[] = {"http", "grpc"};

// Shortest text that reads back as `v`; "+Inf" for infinity (Prometheus' spelling).
std::string Num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, end);
}

void Header(std::string& out, const char* name, const char* type, const char* help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

// A histogram of cumulative bucket counts `cumulative` at `bounds` (the last is +Inf).
void Histogram(std::string& out, const std::string& name, const std::string& labels, const std::vector<double>& bounds,
               const std::vector<uint64_t>& cumulative, double sum, uint64_t count) {
  const std::string sep = labels.empty() ? "" : ",";
  for (size_t b = 0; b < bounds.size(); ++b) {
    absl::StrAppend(&out, name, "_bucket{", labels, sep, "le=\"", Num(bounds[b]), "\"} ", cumulative[b], "\n");
  }
  const std::string braces = labels.empty() ? "" : absl::StrCat("{", labels, "}");
  absl::StrAppend(&out, name, "_sum", braces, " ", Num(sum), "\n", name, "_count", braces, " ", count, "\n");
}

// A host-API latency histogram (pyfleet::LatencyHistogram: bucket b holds durations <=
// bucketBound(b), the last one everything above) in Prometheus form.
void HostHistogram(std::string& out, const std::string& name, const LatencyHistogram& h) {
  std::vector<double> bounds;
  std::vector<uint64_t> cumulative;
  uint64_t running = 0;
  for (int b = 0; b < LatencyHistogram::kBuckets - 1; ++b) {
    running += h.counts[static_cast<size_t>(b)];
    bounds.push_back(LatencyHistogram::bucketBound(b));
    cumulative.push_back(running);
  }
  bounds.push_back(INFINITY);
  cumulative.push_back(h.count);
  Histogram(out, name, "", bounds, cumulative, h.sum_seconds, h.count);
}

}  // namespace

struct ServeMetrics::ModelCounters {
  std::string name;
  // [protocol][code]
  std::atomic<uint64_t> requests[2][kCodes] = {};
  // [protocol][bucket]; the last is +Inf.
  std::atomic<uint64_t> buckets[2][kBuckets.size() + 1] = {};
  std::atomic<uint64_t> sum_ns[2] = {};
};

ServeMetrics::ServeMetrics(const std::vector<std::string>& models) {
  for (const std::string& name : models) {
    models_.push_back(std::make_unique<ModelCounters>());
    models_.back()->name = name;
  }
}

ServeMetrics::~ServeMetrics() = default;

const ServeMetrics::ModelCounters* ServeMetrics::find(const std::string& model) const {
  for (const std::unique_ptr<ModelCounters>& m : models_) {
    if (m->name == model) return m.get();
  }
  return nullptr;
}

void ServeMetrics::recordInference(const std::string& model, Protocol protocol, absl::StatusCode code,
                                   double seconds) noexcept {
  auto* m = const_cast<ModelCounters*>(find(model));
  if (m == nullptr) return;
  const int p = static_cast<int>(protocol);
  const int c = static_cast<int>(code);
  m->requests[p][c >= 0 && c < kCodes ? c : static_cast<int>(absl::StatusCode::kUnknown)].fetch_add(
      1, std::memory_order_relaxed);
  size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  m->buckets[p][b].fetch_add(1, std::memory_order_relaxed);
  m->sum_ns[p].fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

void ServeMetrics::recordHttpResponse(int status) noexcept {
  if (status >= 0 && status < static_cast<int>(http_status_.size())) {
    http_status_[static_cast<size_t>(status)].fetch_add(1, std::memory_order_relaxed);
  }
}

void ServeMetrics::recordGrpcResponse(int code) noexcept {
  if (code >= 0 && code < kCodes) grpc_code_[static_cast<size_t>(code)].fetch_add(1, std::memory_order_relaxed);
}

std::string ServeMetrics::render(const ModelRepository& repository, const Metrics* manager, int64_t in_flight) const {
  std::string out;
  out.reserve(16384);

  // ---- the server's own ----
  Header(out, "pyfleet_serve_requests_total", "counter",
         "Inference requests answered, by model, protocol and status (canonical code name).");
  for (const std::unique_ptr<ModelCounters>& m : models_) {
    for (int p = 0; p < 2; ++p) {
      for (int c = 0; c < kCodes; ++c) {
        const uint64_t n = m->requests[p][c].load(std::memory_order_relaxed);
        if (n == 0) continue;
        absl::StrAppend(&out, "pyfleet_serve_requests_total{model=\"", m->name, "\",protocol=\"", kProtocolNames[p],
                        "\",status=\"", absl::StatusCodeToString(static_cast<absl::StatusCode>(c)), "\"} ", n, "\n");
      }
    }
  }
  Header(out, "pyfleet_serve_request_duration_seconds", "histogram",
         "Inference request latency in the server (request decoded to answer ready), by model and protocol.");
  std::vector<double> bounds(kBuckets.begin(), kBuckets.end());
  bounds.push_back(INFINITY);
  for (const std::unique_ptr<ModelCounters>& m : models_) {
    for (int p = 0; p < 2; ++p) {
      std::vector<uint64_t> cumulative;
      uint64_t running = 0;
      for (size_t b = 0; b < bounds.size(); ++b) {
        running += m->buckets[p][b].load(std::memory_order_relaxed);
        cumulative.push_back(running);
      }
      Histogram(out, "pyfleet_serve_request_duration_seconds",
                absl::StrCat("model=\"", m->name, "\",protocol=\"", kProtocolNames[p], "\""), bounds, cumulative,
                static_cast<double>(m->sum_ns[p].load(std::memory_order_relaxed)) * 1e-9, running);
    }
  }
  Header(out, "pyfleet_serve_http_responses_total", "counter", "HTTP responses, every route, by status code.");
  for (size_t s = 0; s < http_status_.size(); ++s) {
    const uint64_t n = http_status_[s].load(std::memory_order_relaxed);
    if (n > 0) absl::StrAppend(&out, "pyfleet_serve_http_responses_total{code=\"", s, "\"} ", n, "\n");
  }
  Header(out, "pyfleet_serve_grpc_responses_total", "counter", "gRPC calls, every method, by status code.");
  for (int c = 0; c < kCodes; ++c) {
    const uint64_t n = grpc_code_[static_cast<size_t>(c)].load(std::memory_order_relaxed);
    if (n > 0) {
      absl::StrAppend(&out, "pyfleet_serve_grpc_responses_total{code=\"",
                      absl::StatusCodeToString(static_cast<absl::StatusCode>(c)), "\"} ", n, "\n");
    }
  }
  Header(out, "pyfleet_serve_in_flight_requests", "gauge", "Inference requests being answered now.");
  absl::StrAppend(&out, "pyfleet_serve_in_flight_requests ", in_flight, "\n");
  Header(out, "pyfleet_serve_model_ready", "gauge", "1 if the model is ready, else 0.");
  for (const std::unique_ptr<ServedModel>& model : repository.models()) {
    absl::StrAppend(&out, "pyfleet_serve_model_ready{model=\"", model->name(), "\"} ",
                    model->state() == ServedModel::State::kReady ? 1 : 0, "\n");
  }
  Header(out, "pyfleet_serve_batch_queue_depth", "gauge", "Requests of a batched model waiting for a batch.");
  for (const std::unique_ptr<ServedModel>& model : repository.models()) {
    if (model->batcher() == nullptr) continue;
    absl::StrAppend(&out, "pyfleet_serve_batch_queue_depth{model=\"", model->name(), "\"} ",
                    model->batcher()->queueDepth(), "\n");
  }
  Header(out, "pyfleet_serve_batches_total", "counter", "Batched calls of a batched model, by rows (\"more\": above the limit).");
  for (const std::unique_ptr<ServedModel>& model : repository.models()) {
    if (model->batcher() == nullptr) continue;
    const std::vector<uint64_t> sizes = model->batcher()->batchSizeCounts();
    for (size_t r = 0; r < sizes.size(); ++r) {
      if (sizes[r] == 0) continue;
      absl::StrAppend(&out, "pyfleet_serve_batches_total{model=\"", model->name(), "\",rows=\"",
                      r == 0 ? std::string("more") : absl::StrCat(r), "\"} ", sizes[r], "\n");
    }
  }

  // ---- the host API's (pyfleet::Metrics) ----
  if (manager == nullptr) return out;
  const Metrics& m = *manager;
  Header(out, "pyfleet_interpreters", "gauge", "Interpreters of the server's InterpreterManager.");
  absl::StrAppend(&out, "pyfleet_interpreters ", m.interpreters.size(), "\n");
  Header(out, "pyfleet_queue_depth", "gauge", "Asynchronous calls waiting for an interpreter.");
  absl::StrAppend(&out, "pyfleet_queue_depth ", m.queue_depth, "\n");
  Header(out, "pyfleet_busy_interpreters", "gauge", "Interpreters running a call now.");
  absl::StrAppend(&out, "pyfleet_busy_interpreters ", m.busy_interpreters, "\n");
  Header(out, "pyfleet_stuck_interpreters", "gauge",
         "Interpreters out of rotation: a call past its deadline has not returned.");
  absl::StrAppend(&out, "pyfleet_stuck_interpreters ", m.stuck_interpreters, "\n");
  Header(out, "pyfleet_calls_rejected_total", "counter", "Calls refused because the queue was full.");
  absl::StrAppend(&out, "pyfleet_calls_rejected_total ", m.rejected, "\n");
  struct Counter {
    const char* name;
    const char* help;
    uint64_t CallMetrics::*field;
  };
  const Counter counters[] = {
      {"pyfleet_calls_total", "Calls finished, by interpreter.", &CallMetrics::calls},
      {"pyfleet_call_errors_total", "Calls that failed (deadlines included), by interpreter.", &CallMetrics::errors},
      {"pyfleet_call_timeouts_total", "Calls that failed with DEADLINE_EXCEEDED, by interpreter.",
       &CallMetrics::timeouts},
      {"pyfleet_call_cancelled_total", "Calls that failed with CANCELLED, by interpreter.", &CallMetrics::cancelled},
  };
  for (const Counter& c : counters) {
    Header(out, c.name, "counter", c.help);
    for (const InterpreterMetrics& i : m.interpreters) {
      absl::StrAppend(&out, c.name, "{interpreter=\"", i.index, "\"} ", i.*(c.field), "\n");
    }
  }
  Header(out, "pyfleet_interpreter_busy_seconds_total", "counter", "Time spent running calls, by interpreter.");
  for (const InterpreterMetrics& i : m.interpreters) {
    absl::StrAppend(&out, "pyfleet_interpreter_busy_seconds_total{interpreter=\"", i.index, "\"} ", Num(i.busy_seconds),
                    "\n");
  }
  Header(out, "pyfleet_interpreter_busy", "gauge", "Sessions and calls holding the interpreter now.");
  for (const InterpreterMetrics& i : m.interpreters) {
    absl::StrAppend(&out, "pyfleet_interpreter_busy{interpreter=\"", i.index, "\"} ", i.busy_now, "\n");
  }
  Header(out, "pyfleet_interpreter_stuck", "gauge", "1 if the interpreter is out of rotation, else 0.");
  for (const InterpreterMetrics& i : m.interpreters) {
    absl::StrAppend(&out, "pyfleet_interpreter_stuck{interpreter=\"", i.index, "\"} ", i.stuck ? 1 : 0, "\n");
  }
  Header(out, "pyfleet_call_run_seconds", "histogram", "Time calls ran in an interpreter (all interpreters).");
  HostHistogram(out, "pyfleet_call_run_seconds", m.total.run_time);
  Header(out, "pyfleet_call_queue_wait_seconds", "histogram", "Time asynchronous calls waited for an interpreter.");
  HostHistogram(out, "pyfleet_call_queue_wait_seconds", m.total.queue_wait);
  return out;
}

}  // namespace pyfleet::serve
