// File: serve_load.cpp
//
// pyfleet-serve-load: a closed-loop load generator for Open Inference Protocol servers,
// over HTTP/REST (JSON) or gRPC (raw contents), that checks every answer. pyfleet-serve's
// load test runs it (tests/serve), and the serving benchmark uses it for gRPC, for which
// Debian has no load generator (benchmarks/serve/run_serve_bench.py).
//
//   pyfleet-serve-load --target 127.0.0.1:8000 --protocol http --model gil
//       --cases cases.json --requests 20000 --concurrency 16
//   {"protocol":"http","requests":20000,"ok":20000,"errors":0,"mismatches":0,
//    "seconds":14.2,"throughput":1408.5,"p50_ms":10.9,"p90_ms":14.1,"p99_ms":21.7,...}
//
// --cases is a JSON array of {"inputs": [tensor...], "outputs": [tensor...]}, tensors as
// the protocol's JSON ({"name", "shape", "datatype", "data"}), FP32/FP64/INT64/INT32/BOOL.
// Request i sends case i % N and its answer must hold exactly the case's outputs (the
// same bits: FP32 values compared as floats). C client threads each keep one connection
// (HTTP keep-alive; a gRPC channel of its own) and send the next request as soon as the
// last one is answered. With --seconds the run stops after that long instead of after
// --requests. The summary is one JSON line on stdout; the exit status is 0 only if every
// request succeeded and matched.
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "runtime/tools/tool_main.h"

ABSL_FLAG(std::string, target, "127.0.0.1:8000", "HOST:PORT of the server");
ABSL_FLAG(std::string, protocol, "http", "http (JSON) or grpc (raw contents)");
ABSL_FLAG(std::string, model, "", "model name");
ABSL_FLAG(std::string, cases, "", "JSON file: [{\"inputs\": [...], \"outputs\": [...]}]");
ABSL_FLAG(int64_t, requests, 1000, "requests to send (ignored with --seconds)");
ABSL_FLAG(double, seconds, 0, "run for this long instead of --requests");
ABSL_FLAG(int, concurrency, 1, "client threads, each with one connection");
ABSL_FLAG(bool, check, true, "compare every answer with the case's outputs");
ABSL_FLAG(double, warmup, 0, "seconds of requests before measuring (not counted)");

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr pyfleet::tools::ToolInfo kTool = {
    "pyfleet-serve-load",
    "pyfleet-serve-load --target HOST:PORT --protocol http|grpc --model NAME --cases FILE "
    "[--requests N | --seconds S] [--concurrency C]",
    "Closed-loop load on an Open Inference Protocol server (HTTP/REST or gRPC) that checks\n"
    "every answer against the expected outputs; prints one JSON line of figures.",
    __FILE__};

struct Tensor {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
  Json data;        // flat
  std::string raw;  // little-endian elements
};

size_t ElementSize(const std::string& t) {
  if (t == "FP64" || t == "INT64") return 8;
  if (t == "FP32" || t == "INT32") return 4;
  if (t == "BOOL") return 1;
  throw std::runtime_error("pyfleet-serve-load: unsupported datatype " + t);
}

void Flatten(const Json& j, Json& out) {
  if (j.is_array()) {
    for (const Json& e : j) Flatten(e, out);
  } else {
    out.push_back(j);
  }
}

Tensor ReadTensor(const Json& j) {
  Tensor t;
  t.name = j.at("name").get<std::string>();
  t.datatype = j.at("datatype").get<std::string>();
  t.shape = j.at("shape").get<std::vector<int64_t>>();
  t.data = Json::array();
  Flatten(j.at("data"), t.data);
  const size_t size = ElementSize(t.datatype);
  t.raw.resize(t.data.size() * size);
  for (size_t i = 0; i < t.data.size(); ++i) {
    char* p = t.raw.data() + i * size;
    if (t.datatype == "FP32") {
      const float v = static_cast<float>(t.data[i].get<double>());
      std::memcpy(p, &v, 4);
    } else if (t.datatype == "FP64") {
      const double v = t.data[i].get<double>();
      std::memcpy(p, &v, 8);
    } else if (t.datatype == "INT64") {
      const int64_t v = t.data[i].get<int64_t>();
      std::memcpy(p, &v, 8);
    } else if (t.datatype == "INT32") {
      const int32_t v = t.data[i].get<int32_t>();
      std::memcpy(p, &v, 4);
    } else {
      *p = t.data[i].get<bool>() ? 1 : 0;
    }
  }
  return t;
}

struct Case {
  std::vector<Tensor> inputs, outputs;
  std::string body;                         // HTTP request body
  inference::ModelInferRequest request;     // gRPC request
};

std::vector<Case> ReadCases(const std::string& path, const std::string& model) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("pyfleet-serve-load: cannot read --cases " + path);
  std::stringstream text;
  text << in.rdbuf();
  const Json cases = Json::parse(text.str());
  std::vector<Case> out;
  for (const Json& c : cases) {
    Case k;
    Json body = {{"inputs", Json::array()}};
    k.request.set_model_name(model);
    for (const Json& i : c.at("inputs")) {
      k.inputs.push_back(ReadTensor(i));
      const Tensor& t = k.inputs.back();
      body["inputs"].push_back({{"name", t.name}, {"shape", t.shape}, {"datatype", t.datatype}, {"data", t.data}});
      auto* input = k.request.add_inputs();
      input->set_name(t.name);
      input->set_datatype(t.datatype);
      for (int64_t d : t.shape) input->add_shape(d);
      k.request.add_raw_input_contents(t.raw);
    }
    for (const Json& o : c.at("outputs")) k.outputs.push_back(ReadTensor(o));
    k.body = body.dump();
    out.push_back(std::move(k));
  }
  if (out.empty()) throw std::runtime_error("pyfleet-serve-load: --cases holds no case");
  return out;
}

// Whether a JSON answer holds exactly `c`'s outputs.
bool MatchesJson(const std::string& body, const Case& c) {
  const Json answer = Json::parse(body, nullptr, false);
  if (answer.is_discarded() || !answer.contains("outputs")) return false;
  const Json& outputs = answer["outputs"];
  if (outputs.size() != c.outputs.size()) return false;
  for (size_t i = 0; i < c.outputs.size(); ++i) {
    const Tensor& want = c.outputs[i];
    const Json& got = outputs[i];
    if (got.value("name", "") != want.name || got.value("datatype", "") != want.datatype ||
        got.value("shape", std::vector<int64_t>()) != want.shape) {
      return false;
    }
    const Json& data = got["data"];
    if (!data.is_array() || data.size() != want.data.size()) return false;
    for (size_t j = 0; j < data.size(); ++j) {
      if (want.datatype == "FP32") {
        if (!data[j].is_number() ||
            static_cast<float>(data[j].get<double>()) != static_cast<float>(want.data[j].get<double>())) {
          return false;
        }
      } else if (data[j] != want.data[j]) {
        return false;
      }
    }
  }
  return true;
}

bool MatchesGrpc(const inference::ModelInferResponse& r, const Case& c) {
  if (r.outputs_size() != static_cast<int>(c.outputs.size()) ||
      r.raw_output_contents_size() != static_cast<int>(c.outputs.size())) {
    return false;
  }
  for (size_t i = 0; i < c.outputs.size(); ++i) {
    const auto& got = r.outputs(static_cast<int>(i));
    const Tensor& want = c.outputs[i];
    if (got.name() != want.name || got.datatype() != want.datatype ||
        std::vector<int64_t>(got.shape().begin(), got.shape().end()) != want.shape ||
        r.raw_output_contents(static_cast<int>(i)) != want.raw) {
      return false;
    }
  }
  return true;
}

struct Outcome {
  std::vector<double> latencies;  // seconds, measured requests only
  int64_t ok = 0, errors = 0, mismatches = 0;
  std::string first_error;
};

double Percentile(std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())));
  return sorted[i];
}

int Run(const std::vector<char*>&) {
  const std::string target = absl::GetFlag(FLAGS_target);
  const std::string protocol = absl::GetFlag(FLAGS_protocol);
  const std::string model = absl::GetFlag(FLAGS_model);
  const int concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const int64_t requests = absl::GetFlag(FLAGS_requests);
  const bool check = absl::GetFlag(FLAGS_check);
  const double warmup = absl::GetFlag(FLAGS_warmup);
  if (model.empty()) throw std::runtime_error("pyfleet-serve-load: --model is required");
  if (protocol != "http" && protocol != "grpc") throw std::runtime_error("pyfleet-serve-load: --protocol http|grpc");
  const std::vector<Case> cases = ReadCases(absl::GetFlag(FLAGS_cases), model);
  const std::string path = absl::StrCat("/v2/models/", model, "/infer");
  const size_t colon = target.rfind(':');
  const std::string host = target.substr(0, colon);
  const int port = std::stoi(target.substr(colon + 1));

  std::atomic<int64_t> next{0};
  std::vector<Outcome> outcomes(static_cast<size_t>(concurrency));
  const Clock::time_point start = Clock::now();
  auto after = [&](double s) {
    return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  // Warm-up applies to --seconds runs: requests sent before measure_from are not counted.
  const Clock::time_point measure_from = seconds > 0 ? after(warmup) : start;
  const Clock::time_point stop_at = seconds > 0 ? after(warmup + seconds) : Clock::time_point::max();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      Outcome& out = outcomes[static_cast<size_t>(t)];
      httplib::Client http(host, port);
      http.set_keep_alive(true);
      http.set_tcp_nodelay(true);
      http.set_read_timeout(120, 0);
      http.set_write_timeout(120, 0);
      std::unique_ptr<inference::GRPCInferenceService::Stub> stub;
      if (protocol == "grpc") {
        grpc::ChannelArguments args;
        args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
        args.SetMaxReceiveMessageSize(-1);
        stub = inference::GRPCInferenceService::NewStub(
            grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
      }
      for (;;) {
        int64_t i = 0;
        if (seconds > 0) {
          if (Clock::now() >= stop_at) break;
          i = next.fetch_add(1, std::memory_order_relaxed);
        } else {
          i = next.fetch_add(1, std::memory_order_relaxed);
          if (i >= requests) break;
        }
        const Case& c = cases[static_cast<size_t>(i) % cases.size()];
        const Clock::time_point sent = Clock::now();
        bool ok = false, matched = false;
        std::string error;
        if (protocol == "http") {
          httplib::Result r = http.Post(path, c.body, "application/json");
          if (!r) {
            error = absl::StrCat("connection: ", httplib::to_string(r.error()));
          } else if (r->status != 200) {
            error = absl::StrCat("HTTP ", r->status, ": ", r->body.substr(0, 300));
          } else {
            ok = true;
            matched = !check || MatchesJson(r->body, c);
          }
        } else {
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
          inference::ModelInferResponse response;
          grpc::Status s = stub->ModelInfer(&context, c.request, &response);
          if (!s.ok()) {
            error = absl::StrCat("gRPC ", s.error_code(), ": ", s.error_message());
          } else {
            ok = true;
            matched = !check || MatchesGrpc(response, c);
          }
        }
        const Clock::time_point done = Clock::now();
        if (sent < measure_from || done > stop_at) continue;
        if (ok && matched) {
          ++out.ok;
        } else if (ok) {
          ++out.mismatches;
          if (out.first_error.empty()) {
            out.first_error = absl::StrCat("request ", i, ": the answer differs from the case's outputs");
          }
        } else {
          ++out.errors;
          if (out.first_error.empty()) out.first_error = absl::StrCat("request ", i, ": ", error);
        }
        out.latencies.push_back(std::chrono::duration<double>(done - sent).count());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const Clock::time_point end = seconds > 0 ? stop_at : Clock::now();
  const double elapsed = std::chrono::duration<double>(end - measure_from).count();

  Outcome all;
  for (Outcome& o : outcomes) {
    all.ok += o.ok;
    all.errors += o.errors;
    all.mismatches += o.mismatches;
    if (all.first_error.empty()) all.first_error = o.first_error;
    all.latencies.insert(all.latencies.end(), o.latencies.begin(), o.latencies.end());
  }
  std::sort(all.latencies.begin(), all.latencies.end());
  const int64_t total = all.ok + all.errors + all.mismatches;
  Json summary = {{"protocol", protocol},
                  {"model", model},
                  {"concurrency", concurrency},
                  {"requests", total},
                  {"ok", all.ok},
                  {"errors", all.errors},
                  {"mismatches", all.mismatches},
                  {"seconds", elapsed},
                  {"throughput", elapsed > 0 ? static_cast<double>(total) / elapsed : 0.0},
                  {"p50_ms", Percentile(all.latencies, 0.50) * 1e3},
                  {"p90_ms", Percentile(all.latencies, 0.90) * 1e3},
                  {"p99_ms", Percentile(all.latencies, 0.99) * 1e3},
                  {"max_ms", all.latencies.empty() ? 0.0 : all.latencies.back() * 1e3}};
  if (!all.first_error.empty()) summary["first_error"] = all.first_error;
  std::printf("%s\n", summary.dump().c_str());
  return total > 0 && all.errors == 0 && all.mismatches == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return pyfleet::tools::ToolMain(argc, argv, kTool, Run);
}
