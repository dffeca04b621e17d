// File: bench_worker.cpp
//
// pyfleet-bench-worker: one measurement of a C++ strategy for pyfleet-bench, in a process
// of its own so that the parent can read this setup's memory alone (the parent links no
// LibTorch: its pages would otherwise share the cost of this one's). It loads the model,
// calls it back to back from T host threads and speaks bench_protocol.h on stdin/stdout.
//
//   pyfleet-bench-worker --strategy multi_python --package B/examples/mlp.pt --threads 2
//
// Strategies (the C++ half of pyfleet-bench's list):
//   multi_python  T threads over an InterpreterManager of T interpreters, through one
//                 ReplicatedObj (the load balancer spreads the threads);
//   one_python    T threads through a ReplicatedObj of a manager of ONE interpreter: the
//                 GIL baseline inside pyfleet;
//   torchscript   T threads sharing one torch::jit::load()ed module (--twin), the
//                 package's TorchScript twin, on --example (see ReadSavedExample).
// The input is the package's model/example.pkl (a tuple of positional arguments), each
// thread calling with its own clone. Intra-op threads: at::set_num_threads(1); autograd
// off in every calling thread (at::NoGradGuard: grad mode is LibTorch's thread-local, so
// it holds inside the interpreters too, as torch.no_grad() does in bench_worker.py).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/version.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "benchmarks/bench/bench_protocol.h"
#include "pyfleet/pyfleet.h"
#include "runtime/tools/tool_main.h"

ABSL_FLAG(std::string, strategy, "", "multi_python, one_python or torchscript");
ABSL_FLAG(std::string, package, "", "the torch.package (model/model.pkl, model/example.pkl)");
ABSL_FLAG(std::string, twin, "", "torchscript: the TorchScript twin (NAME.jit.pt)");
ABSL_FLAG(std::string, example, "", "torchscript: the example arguments (bench_worker.py --save-example)");
ABSL_FLAG(int, threads, 1, "host threads calling the model");
ABSL_FLAG(double, warmup, 1.0, "seconds of calls before reporting ready");

namespace {

constexpr pyfleet::tools::ToolInfo kTool = {
    "pyfleet-bench-worker",
    "pyfleet-bench-worker --strategy S --package P [--twin J --example E] [--threads T] [--warmup W]",
    "Internal: started by pyfleet-bench, one process per measurement of the multi_python,\n"
    "one_python and torchscript strategies; speaks the line protocol of\n"
    "benchmarks/bench/bench_protocol.h on stdin/stdout.",
    __FILE__};

using Call = std::function<c10::IValue(const std::vector<c10::IValue>&)>;

struct Setup {
  Call call;
  std::vector<c10::IValue> example;  // positional arguments
  // Keeps the loaded state (manager, package, module) alive for the calls.
  std::shared_ptr<void> keep_alive;
  // Extra "key=value" words for the ready line (how calls spread over interpreters).
  std::function<std::string()> describe = [] { return std::string(); };
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A tuple holds the positional arguments; anything else is the one argument.
std::vector<c10::IValue> Arguments(const c10::IValue& example) {
  if (example.isTuple()) return example.toTupleRef().elements().vec();
  return {example};
}

// The arguments with every tensor cloned: each thread calls with inputs of its own.
std::vector<c10::IValue> CloneTensors(const std::vector<c10::IValue>& args) {
  std::vector<c10::IValue> out;
  for (const c10::IValue& a : args) out.push_back(a.isTensor() ? c10::IValue(a.toTensor().clone()) : a);
  return out;
}

Setup LoadPyfleet(const std::string& package_path, size_t interpreters) {
  auto manager = std::make_shared<pyfleet::InterpreterManager>(interpreters);
  pyfleet::Package package = manager->loadPackage(package_path);
  auto model = std::make_shared<pyfleet::ReplicatedObj>(package.loadPickle("model", "model.pkl"));
  // Every interpreter's copy is loaded now, not by the first timed call there.
  for (const pyfleet::Interpreter& interp : manager->allInstances()) (void)model->acquireSession(&interp);
  pyfleet::ReplicatedObj example = package.loadPickle("model", "example.pkl");
  c10::IValue args = example.acquireSession().self.toIValue();
  Setup setup;
  setup.example = Arguments(args);
  setup.call = [model](const std::vector<c10::IValue>& a) { return (*model)(a); };
  setup.describe = [manager] {
    std::vector<uint64_t> calls;
    for (const pyfleet::InterpreterMetrics& m : manager->metrics().interpreters) calls.push_back(m.calls);
    return absl::StrCat(" calls_per_interpreter=", absl::StrJoin(calls, ","));
  };
  // The manager goes last (a ReplicatedObj keeps its interpreters alive anyway).
  setup.keep_alive = std::make_shared<std::pair<std::shared_ptr<pyfleet::InterpreterManager>,
                                                std::shared_ptr<pyfleet::ReplicatedObj>>>(manager, model);
  return setup;
}

// The example arguments as bench_worker.py --save-example wrote them (torch.save of the
// tuple): torch.package's own pickles need Python to read (their storage keys are ints,
// which LibTorch's unpickler does not take).
c10::IValue ReadSavedExample(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(absl::StrCat("cannot read ", path));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return torch::jit::pickle_load(bytes);
}

Setup LoadTorchScript(const std::string& twin, const std::string& example) {
  auto module = std::make_shared<torch::jit::Module>(torch::jit::load(twin));
  module->eval();
  Setup setup;
  setup.example = Arguments(ReadSavedExample(example));
  setup.call = [module](const std::vector<c10::IValue>& a) { return module->forward(a); };
  setup.keep_alive = module;
  return setup;
}

Setup Load(const std::string& strategy, const std::string& package, const std::string& twin,
           const std::string& example, int threads) {
  if (strategy == "multi_python") return LoadPyfleet(package, threads);
  if (strategy == "one_python") return LoadPyfleet(package, 1);
  if (strategy == "torchscript") {
    if (twin.empty() || example.empty()) throw std::invalid_argument("--strategy torchscript needs --twin and --example");
    return LoadTorchScript(twin, example);
  }
  throw std::invalid_argument(absl::StrCat("unknown --strategy '", strategy, "'"));
}

// Reads "go <t0_ns> <t_end_ns>" from the parent; throws if it is gone.
std::pair<int64_t, int64_t> ReadGo() {
  std::string line;
  if (!std::getline(std::cin, line)) throw std::runtime_error("stdin closed before \"go\"");
  std::istringstream in(line);
  std::string word;
  int64_t t0 = 0, t_end = 0;
  if (!(in >> word >> t0 >> t_end) || word != pyfleet::bench::kGo) {
    throw std::runtime_error(absl::StrCat("expected \"go T0 TEND\", got \"", line, "\""));
  }
  return {t0, t_end};
}

int Run(const std::vector<char*>& /*positional*/) {
  const int threads = absl::GetFlag(FLAGS_threads);
  const double warmup = absl::GetFlag(FLAGS_warmup);
  if (threads < 1) throw std::invalid_argument("--threads must be >= 1");
  at::set_num_threads(1);  // the comparison is about the GIL, not intra-op parallelism
  Setup setup = Load(absl::GetFlag(FLAGS_strategy), absl::GetFlag(FLAGS_package), absl::GetFlag(FLAGS_twin),
                     absl::GetFlag(FLAGS_example), threads);

  // See Note [Measuring window] in bench_protocol.h.
  std::atomic<int64_t> t0{INT64_MAX}, t_end{INT64_MAX};
  std::atomic<int> warmed{0};
  std::atomic<bool> failed{false};
  std::vector<std::vector<int64_t>> latencies(threads);
  std::vector<std::exception_ptr> errors(threads);
  std::vector<std::thread> workers;
  const int64_t warmup_ns = static_cast<int64_t>(warmup * 1e9);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      try {
        at::NoGradGuard no_grad;
        const std::vector<c10::IValue> args = CloneTensors(setup.example);
        const int64_t start = NowNs();
        bool warm = false;
        for (int64_t n = 1; !failed.load(std::memory_order_relaxed); ++n) {
          const int64_t s = NowNs();
          c10::IValue out = setup.call(args);
          const int64_t e = NowNs();
          if (n == 1 && out.isTensor() && out.toTensor().requires_grad()) {
            throw std::runtime_error("the model's output requires grad: autograd is on in a benchmark thread");
          }
          if (!warm && n >= pyfleet::bench::kMinWarmupCalls && e - start >= warmup_ns) {
            warm = true;
            warmed.fetch_add(1);
          }
          if (e >= t0.load()) {
            if (e > t_end.load()) break;
            latencies[t].push_back(e - s);
          }
        }
      } catch (...) {
        errors[t] = std::current_exception();
        failed.store(true);
      }
    });
  }
  auto join_and_rethrow = [&] {
    for (std::thread& w : workers) w.join();
    for (std::exception_ptr& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  };
  while (warmed.load() < threads && !failed.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (failed.load()) join_and_rethrow();
  std::printf("%s intra_op_threads=%d torch=%s%s\n", pyfleet::bench::kReady, at::get_num_threads(), TORCH_VERSION,
              setup.describe().c_str());
  std::fflush(stdout);

  std::pair<int64_t, int64_t> window;
  try {
    window = ReadGo();
  } catch (...) {
    failed.store(true);
    for (std::thread& w : workers) w.join();
    throw;
  }
  t_end.store(window.second);  // before t0: a thread that sees t0 sees the end too
  t0.store(window.first);
  join_and_rethrow();

  size_t n = 0;
  for (const auto& l : latencies) n += l.size();
  std::string out = absl::StrCat(pyfleet::bench::kResult, " ", n);
  for (const auto& l : latencies) {
    for (int64_t ns : l) absl::StrAppend(&out, " ", ns);
  }
  out += "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  // The measurement is over: exit without finalizing the interpreters (that takes ~0.5 s
  // per setup, and the next setup waits for this process to be gone), as
  // bench_worker.py does with os._exit.
  std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) { return pyfleet::tools::ToolMain(argc, argv, kTool, Run); }
