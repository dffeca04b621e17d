// File: pyfleet_demo.cpp
//
// pyfleet-demo: the main job on an embedded default. Serves one torch.package model
// from N isolated interpreters of this process and shows what that buys:
//   1. the package is opened once; every interpreter loads the model from it, and the
//      weights of all of them are the same memory (one mapping of the file);
//   2. every interpreter's output matches what stock torch computed for the example;
//   3. throughput of 1 interpreter, of N interpreters driven by N host threads, and of N
//      threads sharing ONE interpreter (one GIL), measured side by side.
//
//   pyfleet-demo                          # default: a ResNet-18 package with random weights
//   pyfleet-demo --package m.pt --interpreters 4 --seconds 5
//
// A package for --package must hold "model/model.pkl" (a callable taking one tensor) and
// "model/example.pkl" (its input); "model/expected.pkl", if present, is checked.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "pyfleet/interpreter.h"
#include "pyfleet/package.h"
#include "runtime/tools/process_stats.h"
#include "runtime/tools/tool_main.h"

ABSL_FLAG(std::string, package, "", "torch.package to serve (default: make the embedded ResNet-18 demo)");
ABSL_FLAG(int, interpreters, 2, "number of interpreters");
ABSL_FLAG(double, seconds, 3.0, "seconds per throughput measurement");

namespace {

constexpr pyfleet::tools::ToolInfo kTool = {
    "pyfleet-demo", "pyfleet-demo [--package PATH] [--interpreters N] [--seconds S]",
    "Serves one torch.package model from N isolated interpreters of this process: opens the\n"
    "package once, loads the model in every interpreter (the weights are one mapping of the\n"
    "file), checks each output against stock torch's and prints the throughput of 1\n"
    "interpreter, N interpreters and N threads sharing ONE interpreter. Without --package it\n"
    "makes a ResNet-18 package (random weights) with the stock exporter. A package must hold\n"
    "model/model.pkl (a callable taking one tensor) and model/example.pkl (that tensor);\n"
    "model/expected.pkl, if present, is checked.",
    __FILE__};

// Joins `threads` and rethrows the first exception one of them left in `errors` (a worker
// thread must not let an exception escape: that would std::terminate the process).
void JoinAndRethrow(std::vector<std::thread>& threads, std::vector<std::exception_ptr>& errors) {
  for (auto& t : threads) t.join();
  for (std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

using pyfleet::internal::NowSeconds;
using pyfleet::internal::PssKb;
using pyfleet::internal::RssKb;

// Writes the default package with Debian's python3 and the stock exporter.
std::string MakeDefaultPackage() {
  std::string path = absl::StrCat(P_tmpdir, "/pyfleet-demo-", getpid(), ".pt");
  std::string command = absl::StrCat(PYFLEET_PYTHON, " ", PYFLEET_DEMO_PACKAGE_SCRIPT, " ", path);
  std::printf("making the default package (torchvision ResNet-18, random weights): %s\n", path.c_str());
  std::fflush(stdout);
  if (std::system(command.c_str()) != 0) {
    throw pyfleet::Error(absl::InternalError("failed: " + command));
  }
  return path;
}

// Loads every model folder of the package ("model", and "small" if present) into this
// interpreter: models[name] = (model, example input, expected output or None).
constexpr char kServe[] = R"(
import torch
models = {}
def serve(importer):
    for name in ("model", "small"):
        try:
            model = importer.load_pickle(name, "model.pkl")
        except Exception:
            if name == "model":
                raise  # the one model a package must have
            continue
        example = importer.load_pickle(name, "example.pkl")
        if not isinstance(example, torch.Tensor):
            raise TypeError(f"{name}/example.pkl must hold the model's input tensor, "
                            f"got {type(example).__name__}")
        try:
            expected = importer.load_pickle(name, "expected.pkl")
        except Exception:
            expected = None
        models[name] = (model, example, expected)
def names():
    return ",".join(models)
def example(name):
    return models[name][1]
def expected(name):
    return models[name][2]
def infer(name, x):
    with torch.no_grad():
        return models[name][0](x)
def first_weight():
    return next(models["model"][0].parameters())
)";

// Calls infer(model, example) from `threads` host threads for `seconds`; thread t uses
// interpreter pool[shared ? 0 : t]. Returns inferences per second.
double Throughput(std::vector<std::unique_ptr<pyfleet::Interpreter>>& pool, const std::string& model, int threads,
                  bool shared, double seconds) {
  std::atomic<long> calls{0};
  std::atomic<bool> failed{false};  // stops the others at once
  std::vector<std::thread> workers;
  std::vector<std::exception_ptr> errors(threads);
  const double t0 = NowSeconds();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      pyfleet::Interpreter& interp = *pool[shared ? 0 : t];
      try {
        pyfleet::Obj infer = interp.global("__main__", "infer");
        at::Tensor x = interp.global("__main__", "example")({model}).toTensor();
        long n = 0;
        while (!failed.load() && NowSeconds() - t0 < seconds) {
          infer({model, x});
          ++n;
        }
        calls += n;
      } catch (...) {
        errors[t] = std::current_exception();
        failed.store(true);
      }
      interp.detachThread();
    });
  }
  JoinAndRethrow(workers, errors);
  return calls.load() / (NowSeconds() - t0);
}

int Run(const std::vector<char*>& /*positional*/) {
  const int n = absl::GetFlag(FLAGS_interpreters);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  if (n < 1 || n > 64) throw pyfleet::Error(absl::InvalidArgumentError("--interpreters must be 1..64"));
  std::string path = absl::GetFlag(FLAGS_package);
  const bool made = path.empty();
  if (made) path = MakeDefaultPackage();
  absl::Cleanup remove_made = [&] {
    if (made) std::remove(path.c_str());
  };
  at::set_num_threads(1);  // parallelism comes from interpreters, not intra-op threads

  const double t_open = NowSeconds();
  pyfleet::Package package = pyfleet::Package::open(path);
  std::printf("package %s: %zu records, opened once in %.3f s\n", path.c_str(), package.recordCount(),
              NowSeconds() - t_open);
  auto libs = pyfleet::NativeLibraries::create();
  std::vector<std::unique_ptr<pyfleet::Interpreter>> pool(n);
  absl::Cleanup keep_alive = [&pool] {
    for (auto& p : pool) p.release();  // a serving process keeps its interpreters until exit
  };
  std::vector<std::thread> starters;
  std::vector<std::exception_ptr> errors(n);
  const double t_start = NowSeconds();
  for (int i = 0; i < n; ++i) {
    starters.emplace_back([&, i] {
      try {
        pool[i] = pyfleet::Interpreter::create(libs);
        pool[i]->run(kServe, "<pyfleet-demo>");
        pool[i]->global("__main__", "serve")({pool[i]->packageImporter(package)});
        pool[i]->detachThread();
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  }
  JoinAndRethrow(starters, errors);
  std::printf("%d interpreters started and loaded the model in %.2f s (RSS %.0f MB, PSS %.0f MB)\n", n,
              NowSeconds() - t_start, RssKb() / 1024.0, PssKb() / 1024.0);

  // Same weights memory, same answers.
  std::vector<std::string> models = absl::StrSplit(pool[0]->global("__main__", "names")().toString(), ',');
  at::Tensor w0 = pool[0]->global("__main__", "first_weight")().toTensor();
  bool same_weights = true;
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    same_weights &= pool[i]->global("__main__", "first_weight")().toTensor().data_ptr() == w0.data_ptr();
    for (const std::string& m : models) {
      pyfleet::Obj expected = pool[i]->global("__main__", "expected")({m});
      if (expected.repr() == "None") continue;
      at::Tensor x = pool[i]->global("__main__", "example")({m}).toTensor();
      at::Tensor out = pool[i]->global("__main__", "infer")({m, x}).toTensor();
      worst = std::max(worst, (out - expected.toTensor()).abs().max().item<double>());
    }
  }
  std::printf("weights shared by all interpreters (one storage in the package mapping): %s\n",
              same_weights ? "yes" : "NO");
  std::printf("largest difference from stock torch's output: %.3g %s\n", worst, worst < 1e-4 ? "(ok)" : "(MISMATCH)");

  std::printf("\nthroughput, %.1f s each (inferences/s; at::get_num_threads()=%d, %u cores):\n", seconds,
              at::get_num_threads(), std::thread::hardware_concurrency());
  for (const std::string& m : models) {
    std::printf("  %s:\n", m == "small" ? "small-op MLP (GIL-bound)" : "model (compute-bound)");
    const double one = Throughput(pool, m, 1, false, seconds);
    std::printf("    1 thread,  1 interpreter      %10.1f\n", one);
    if (n > 1) {
      const double own = Throughput(pool, m, n, false, seconds);
      const double shared = Throughput(pool, m, n, true, seconds);
      std::printf("    %d threads, %d interpreters     %10.1f  (%.2fx of one)\n", n, n, own, own / one);
      std::printf("    %d threads, ONE interpreter    %10.1f  (%.2fx of one)\n", n, shared, shared / one);
    }
  }
  return same_weights && worst < 1e-4 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return pyfleet::tools::ToolMain(argc, argv, kTool, Run); }
