// File: host_api_bench.cpp
//
// pyfleet-bench-host-api: what the host API costs per call, and how it holds up under
// contention (Google Benchmark; prints figures, nothing is asserted).
//   * round trip host -> a free interpreter -> a no-op Python function -> host through a
//     ReplicatedObj (target: median <= 1.5 us here), beside the raw ABI call on one
//     interpreter (the floor);
//   * the same with a dict of 4 tensors in and out;
//   * acquireOne() and a full call from 1, 2, 4 and 8 threads on 2 interpreters
//     (throughput must not fall as threads are added);
//   * submit().get() beside a direct call;
//   * before the microbenchmarks: the time until a manager of 1, 2 and 4 interpreters has
//     loaded a ResNet-18 package and answered its first call.
//
//   B/bin/pyfleet-bench-host-api --resnet B/examples/resnet18.pt
//   B/bin/pyfleet-bench-host-api --benchmark_filter=RoundTrip --benchmark_repetitions=5
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "pyfleet/pyfleet.h"
#include "runtime/src/access.h"
#include "runtime/src/interpreter_core.h"

namespace {

constexpr char kNoopModule[] = "def noop(*args):\n    return None\n\ndef echo(x):\n    return x\n";

pyfleet::InterpreterManager* g_manager = nullptr;  // 2 interpreters, for the whole run
pyfleet::ReplicatedObj g_noop;
pyfleet::ReplicatedObj g_echo;

void SetUpManager() {
  g_manager = new pyfleet::InterpreterManager(2);
  g_manager->registerModuleSource("bench_noop", kNoopModule);
  pyfleet::InterpreterSession session = g_manager->acquireOne();
  g_noop = g_manager->createMovable(session.global("bench_noop", "noop"), &session);
  g_echo = g_manager->createMovable(session.global("bench_noop", "echo"), &session);
  for (const pyfleet::Interpreter& interp : g_manager->allInstances()) {
    (void)g_noop.acquireSession(&interp);  // materialise everywhere before timing
    (void)g_echo.acquireSession(&interp);
  }
}

// The floor: the interpreter library's call_value on one interpreter, no balancing.
void BM_RawAbiCall(benchmark::State& state) {
  pyfleet::InterpreterSession session = g_noop.acquireSession(&g_manager->allInstances()[0]);
  const auto& core = pyfleet::internal::Access::core(session.self);
  PyfleetObj* fn = pyfleet::internal::Access::handle(session.self);
  for (auto _ : state) {
    PyfleetValue out{};
    PyfleetStatus* status = core->abi()->call_value(core->interp(), fn, nullptr, 0, nullptr, 0, &out);
    if (status != nullptr) state.SkipWithError(status->message);
    core->abi()->value_clear(core->interp(), &out);
  }
}
BENCHMARK(BM_RawAbiCall)->UseRealTime();

void BM_RoundTripNoop(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(g_noop(at::ArrayRef<c10::IValue>{}));
}
BENCHMARK(BM_RoundTripNoop)->UseRealTime();

void BM_RoundTripDictOfFourTensors(benchmark::State& state) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const char* key : {"a", "b", "c", "d"}) dict.insert(key, at::ones({4, 4}));
  const c10::IValue arg(dict);
  for (auto _ : state) benchmark::DoNotOptimize(g_echo({arg}));
}
BENCHMARK(BM_RoundTripDictOfFourTensors)->UseRealTime();

void BM_AcquireOneContended(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(g_manager->acquireOne());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AcquireOneContended)->UseRealTime()->Threads(1)->Threads(2)->Threads(4)->Threads(8);

void BM_FullCallContended(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(g_noop(at::ArrayRef<c10::IValue>{}));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FullCallContended)->UseRealTime()->Threads(1)->Threads(2)->Threads(4)->Threads(8);

void BM_SubmitGet(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(g_noop.submit({}).get());
}
BENCHMARK(BM_SubmitGet)->UseRealTime();

void BM_DirectCall(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(g_noop(at::ArrayRef<c10::IValue>{}));
}
BENCHMARK(BM_DirectCall)->UseRealTime();

// Time from nothing to the first answer of a ResNet-18 package, for n interpreters.
void TimeToFirstAnswer(const std::string& resnet) {
  std::printf("time to first answer, ResNet-18 (%s):\n", resnet.c_str());
  for (size_t n : {1, 2, 4}) {
    const auto start = std::chrono::steady_clock::now();
    pyfleet::InterpreterManager manager(n);
    const auto started = std::chrono::steady_clock::now();
    pyfleet::Package package = manager.loadPackage(resnet);
    pyfleet::ReplicatedObj model = package.loadPickle("model", "model.pkl");
    at::Tensor y = model({at::randn({1, 3, 224, 224})}).toTensor();
    const auto answered = std::chrono::steady_clock::now();
    auto s = [](auto d) { return std::chrono::duration<double>(d).count(); };
    std::printf("  %zu interpreter(s): %.2f s (interpreters started %.2f s, load + first call %.2f s), out %s\n", n,
                s(answered - start), s(started - start), s(answered - started), y.sizes().vec() == std::vector<int64_t>{1, 1000} ? "1x1000" : "?");
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string resnet;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--resnet=", 9) == 0) resnet = argv[i] + 9;
  }
  std::printf("pyfleet-bench-host-api: 2 interpreters, torch threads %d, %u cores\n", at::get_num_threads(),
              std::thread::hardware_concurrency());
  if (!resnet.empty()) TimeToFirstAnswer(resnet);
  try {
    SetUpManager();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pyfleet-bench-host-api: %s\n", e.what());
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
