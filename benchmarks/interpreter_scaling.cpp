// File: interpreter_scaling.cpp
//
// pyfleet-bench-interpreters: prints what isolated interpreters buy on this machine.
//   1. Start-up: time, RSS and PSS to create an interpreter and to import torch in it,
//      for the first and each later interpreter (MB added to the whole process).
//   2. Scaling: "N interpreters doing N x the work / one interpreter doing 1 x" for a
//      pure-Python loop and a small-op torch model, beside N threads sharing ONE
//      interpreter (one GIL), and beside the same work in N separate python3 processes
//      (what the machine itself allows right now). Ideal: 1.0 for own interpreters (with
//      N <= cores), like processes, and N for a shared one. Measured side by side in one
//      run, best of --repeats.
//
//   3. Host-driven calls: the per-call cost of f(t) -> t from C++, and of handing an
//      interpreter a tensor another interpreter wrapped first ("tagged-tensor handoff").
//
//   B/bin/pyfleet-bench-interpreters --max_interpreters 4 --repeats 3
//   B/bin/pyfleet-bench-interpreters --handoff_only=true   # only the tagged-tensor handoff
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "pyfleet/interpreter.h"
#include "runtime/tools/process_stats.h"
#include "runtime/tools/tool_main.h"

ABSL_FLAG(int, max_interpreters, 4, "largest N (runs N = 1, 2, 4, ... up to it)");
ABSL_FLAG(int, repeats, 3, "repetitions per configuration (best is reported)");
ABSL_FLAG(int, py_iterations, 2000000, "iterations of the pure-Python loop per unit of work");
ABSL_FLAG(int, torch_iterations, 3000, "forward passes of the small model per unit of work");
ABSL_FLAG(int, host_calls, 20000, "host-driven calls per thread for the per-call overhead figure");
ABSL_FLAG(bool, handoff_only, false, "only the tagged-tensor handoff figure (2 interpreters, no scaling runs)");
ABSL_FLAG(bool, startup_only, false, "only the start-up table (no scaling runs, no per-call figures)");
ABSL_FLAG(bool, gc_off_during_import, false,
          "import torch with Python's cyclic GC disabled, then re-enabled (the start-up experiment of issue 9)");
ABSL_FLAG(bool, python_objects, true, "also measure the Python objects import torch allocates (one more interpreter)");

constexpr pyfleet::tools::ToolInfo kTool = {
    "pyfleet-bench-interpreters", "pyfleet-bench-interpreters [--max_interpreters N] [--repeats R] [FLAGS]",
    "Prints what isolated interpreters buy on this machine: start-up time, RSS and PSS of the\n"
    "first and each later interpreter, and the wall time of N interpreters doing N x the work\n"
    "beside N threads sharing ONE interpreter and N separate python3 processes.",
    __FILE__};

namespace {

using pyfleet::internal::NowSeconds;
using pyfleet::internal::PssKb;
using pyfleet::internal::RssKb;

constexpr char kWorkload[] = R"(
import torch
torch.manual_seed(0)
_small = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()
_x = torch.randn(1, 4)
def torch_small(k):
    with torch.no_grad():
        for _ in range(k):
            y = _small(_x)
    return 0
def py_loop(k):
    s = 0
    for i in range(k):
        s += i * i
    return s
)";

// Wall seconds for `threads` host threads, thread t calling fn(k) in interpreter
// pool[shared ? 0 : t]; best of `repeats`.
double Measure(std::vector<std::unique_ptr<pyfleet::Interpreter>>& pool, const char* fn, int k, int threads,
               bool shared, int repeats) {
  std::vector<pyfleet::Obj> fns;
  for (int t = 0; t < threads; ++t) fns.push_back(pool[shared ? 0 : t]->global("__main__", fn));
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    std::vector<std::thread> workers;
    double t0 = NowSeconds();
    for (int t = 0; t < threads; ++t) workers.emplace_back([&, t] { fns[t]({k}); });
    for (auto& w : workers) w.join();
    best = std::min(best, NowSeconds() - t0);
  }
  return best;
}

// The reference a serving process would otherwise use: N separate python3 processes.
// Each child runs kWorkload, then, per line "fn k" on stdin, runs fn(k) and prints its
// seconds; all children get their line at once. Returns the wall time of one unit of
// work in each of N processes, best of `repeats`; -1 if python3 fails.
double MeasureProcesses(const char* fn, int k, int n, int repeats) {
  std::string child = std::string(kWorkload) +
                      "import sys, time\n"
                      "for line in sys.stdin:\n"
                      "    name, k = line.split()\n"
                      "    t = time.perf_counter(); globals()[name](int(k))\n"
                      "    print(time.perf_counter() - t, flush=True)\n";
  struct Child {
    FILE* in = nullptr;
    FILE* out = nullptr;
    pid_t pid = -1;
  };
  std::vector<Child> children(n);
  for (Child& c : children) {
    // Close-on-exec, so no child inherits another child's pipe (it would never see EOF);
    // dup2 below clears the flag on the child's own stdin/stdout.
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) return -1;
    c.pid = fork();
    if (c.pid == 0) {  // only exec below: safe in a multi-threaded parent
      dup2(to_child[0], 0);
      dup2(from_child[1], 1);
      close(to_child[1]);
      close(from_child[0]);
      execl(PYFLEET_PYTHON, PYFLEET_PYTHON, "-c", child.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    c.in = fdopen(to_child[1], "w");
    c.out = fdopen(from_child[0], "r");
  }
  // Warm-up round (the children import torch first), then timed rounds: the wall time
  // from sending the work to the last answer, as Measure() times threads.
  double best = 1e30;
  for (int r = 0; r <= repeats; ++r) {
    const double t0 = NowSeconds();
    for (Child& c : children) {
      std::fprintf(c.in, "%s %d\n", fn, k);
      std::fflush(c.in);
    }
    bool ok = true;
    for (Child& c : children) {
      double seconds = -1;
      ok &= std::fscanf(c.out, "%lf", &seconds) == 1;
    }
    if (!ok) best = -1;
    if (r > 0 && best >= 0) best = std::min(best, NowSeconds() - t0);
  }
  for (Child& c : children) {
    std::fclose(c.in);
    std::fclose(c.out);
    waitpid(c.pid, nullptr, 0);
  }
  return best;
}

// Per-call cost of handing an interpreter a tensor that ANOTHER interpreter wrapped
// first (Note [Tensor handoff]: it gets t.alias()), beside one it wrapped itself: f(t) -> t
// from C++, `calls` calls of each kind on each of pool[0] and pool[1], in alternating
// blocks so that drift hits both alike. Prints
// "tagged-tensor handoff: X us/call (owned: Y us/call)".
void MeasureTaggedHandoff(std::vector<std::unique_ptr<pyfleet::Interpreter>>& pool, int calls) {
  constexpr int kBlocks = 10;
  double tagged = 0, owned = 0;
  for (int i = 0; i < 2; ++i) {
    pyfleet::Obj identity = pool[i]->eval("lambda t: t");
    pyfleet::Obj other = pool[1 - i]->eval("lambda t: t");
    at::Tensor foreign = at::ones({8});
    other({foreign});  // tagged by the other interpreter
    at::Tensor own = at::ones({8});
    identity({own});  // tagged by this one
    for (int warm = 0; warm < 1000; ++warm) {
      identity({foreign}).toTensor();
      identity({own}).toTensor();
    }
    for (int b = 0; b < kBlocks; ++b) {
      double t0 = NowSeconds();
      for (int c = 0; c < calls / kBlocks; ++c) identity({foreign}).toTensor();
      double t1 = NowSeconds();
      for (int c = 0; c < calls / kBlocks; ++c) identity({own}).toTensor();
      double t2 = NowSeconds();
      tagged += t1 - t0;
      owned += t2 - t1;
    }
  }
  const double n = 2.0 * kBlocks * (calls / kBlocks);
  std::printf("tagged-tensor handoff: %.2f us/call (owned: %.2f us/call)\n", 1e6 * tagged / n, 1e6 * owned / n);
}

}  // namespace

int Run(const std::vector<char*>& /*positional*/) {
  const int max_n = absl::GetFlag(FLAGS_max_interpreters);
  const int repeats = absl::GetFlag(FLAGS_repeats);
  at::set_num_threads(1);  // measure interpreter-level parallelism, not intra-op threads
  (void)at::ones({1});
  std::printf("pyfleet-bench-interpreters: cores=%u at::get_num_threads()=%d max_interpreters=%d repeats=%d\n",
              std::thread::hardware_concurrency(), at::get_num_threads(), max_n, repeats);

  auto libs = pyfleet::NativeLibraries::create();
  std::vector<std::unique_ptr<pyfleet::Interpreter>> pool;
  if (absl::GetFlag(FLAGS_handoff_only)) {
    for (int i = 0; i < 2; ++i) {
      pool.push_back(pyfleet::Interpreter::create(libs));
      pool.back()->run("import torch\n");
    }
    MeasureTaggedHandoff(pool, absl::GetFlag(FLAGS_host_calls));
    for (auto& p : pool) p.release();  // interpreters live until exit (ARCHITECTURE.md §11)
    return 0;
  }
  std::printf("\n== start-up (RSS of the whole process) ==\n");
  // native_s: of import_torch_s, the time spent making and loading library copies (and
  // the first time, their templates); the rest is CPython importing torch's modules.
  std::printf("%-6s %10s %10s %10s %15s %10s %15s %15s\n", "interp", "create_s", "create_MB", "create_PSS",
              "import_torch_s", "native_s", "import_torch_MB", "import_tor_PSS");
  for (int i = 0; i < max_n; ++i) {
    long r0 = RssKb(), p0 = PssKb();
    double t0 = NowSeconds();
    pool.push_back(pyfleet::Interpreter::create(libs));
    double t1 = NowSeconds();
    long r1 = RssKb(), p1 = PssKb();
    const pyfleet::NativeLibraries::Stats s1 = libs->stats();
    pool.back()->run(absl::GetFlag(FLAGS_gc_off_during_import)
                         ? "import gc\ngc.disable()\ntry:\n    import torch\nfinally:\n    gc.enable()\n"
                         : "import torch\n");
    double t2 = NowSeconds();
    long r2 = RssKb(), p2 = PssKb();
    const pyfleet::NativeLibraries::Stats s2 = libs->stats();
    const double native = s2.copy_seconds - s1.copy_seconds + s2.template_seconds - s1.template_seconds;
    std::printf("%-6d %10.3f %10.1f %10.1f %15.3f %10.3f %15.1f %15.1f\n", i, t1 - t0, (r1 - r0) / 1024.0,
                (p1 - p0) / 1024.0, t2 - t1, native, (r2 - r1) / 1024.0, (p2 - p1) / 1024.0);
    pool.back()->run(kWorkload);
  }
  auto stats = libs->stats();
  std::printf("templates built: %d in %.3f s; library copies loaded: %d in %.3f s; %.1f MB of their code shared; "
              "%d symbol relocations bound in the templates\n",
              stats.templates_built, stats.template_seconds, stats.copies_loaded, stats.copy_seconds,
              stats.shared_bytes / 1048576.0, stats.self_bound_relocations);
  // The reference: the same import in a fresh python3 process (best of 3).
  double stock = 1e30;
  for (int r = 0; r < 3; ++r) {
    FILE* out = ::popen(PYFLEET_PYTHON " -c \"import time; t = time.perf_counter(); import torch; "
                        "print(time.perf_counter() - t)\" 2>/dev/null", "r");
    double seconds = -1;
    if (out != nullptr) {
      if (std::fscanf(out, "%lf", &seconds) != 1) seconds = -1;
      ::pclose(out);
    }
    if (seconds > 0) stock = std::min(stock, seconds);
  }
  if (stock < 1e30) std::printf("reference: import torch in a fresh python3 process: %.3f s\n", stock);
  if (absl::GetFlag(FLAGS_python_objects)) {
    // What `import torch` itself allocates as Python objects, whatever the runtime does:
    // a floor under a later interpreter's private memory (tracemalloc, one more interpreter).
    auto probe = pyfleet::Interpreter::create(libs);
    probe->run("import tracemalloc\ntracemalloc.start()\nimport torch\n"
               "_traced = tracemalloc.get_traced_memory()[0]\ntracemalloc.stop()\n");
    std::printf("Python objects allocated by import torch (tracemalloc): %.1f MB\n",
                probe->global("__main__", "_traced").toInt() / 1048576.0);
    probe.release();
  }

  if (absl::GetFlag(FLAGS_startup_only)) {
    for (auto& p : pool) p.release();
    return 0;
  }
  std::printf("\n== scaling: wall time of N units of work / wall time of 1 unit ==\n");
  std::printf("%-12s %3s %14s %14s %18s %18s %18s\n", "workload", "N", "1 interp (s)", "N interps (s)",
              "ratio own interps", "ratio ONE interp", "ratio N processes");
  struct Work {
    const char* fn;
    int k;
  } works[] = {{"py_loop", absl::GetFlag(FLAGS_py_iterations)}, {"torch_small", absl::GetFlag(FLAGS_torch_iterations)}};
  for (const Work& w : works) {
    for (int n = 2; n <= max_n; n *= 2) {
      double one = Measure(pool, w.fn, w.k, 1, false, repeats);
      double own = Measure(pool, w.fn, w.k, n, false, repeats);
      double shared = Measure(pool, w.fn, w.k, n, true, repeats);
      // Same work in separate python3 processes, right after: the machine's own ratio.
      double process_one = MeasureProcesses(w.fn, w.k, 1, repeats);
      double process_n = MeasureProcesses(w.fn, w.k, n, repeats);
      std::printf("%-12s %3d %14.3f %14.3f %18.2f %18.2f %18.2f\n", w.fn, n, one, own, own / one, shared / one,
                  process_one > 0 && process_n > 0 ? process_n / process_one : -1.0);
    }
  }
  // Per-call cost of driving an interpreter from C++: GIL taken with the thread's
  // persistent thread state, a host tensor wrapped without a copy, the result unwrapped.
  std::printf("\n== host-driven calls: f(t) -> t from C++, %d calls per thread ==\n", absl::GetFlag(FLAGS_host_calls));
  for (int n = 1; n <= std::min(max_n, 2); ++n) {
    std::vector<std::thread> workers;
    const int calls = absl::GetFlag(FLAGS_host_calls);
    const double t0 = NowSeconds();
    for (int t = 0; t < n; ++t) {
      workers.emplace_back([&, t] {
        pyfleet::Obj identity = pool[t]->eval("lambda t: t");
        at::Tensor x = at::ones({8});
        for (int c = 0; c < calls; ++c) identity({x}).toTensor();
        pool[t]->detachThread();
      });
    }
    for (auto& w : workers) w.join();
    const double wall = NowSeconds() - t0;
    std::printf("%d thread(s) on own interpreters: %.2f us per call per thread, %.0f calls/s in all\n", n,
                1e6 * wall / calls, n * calls / wall);
  }
  if (max_n >= 2) MeasureTaggedHandoff(pool, absl::GetFlag(FLAGS_host_calls));

  std::printf("\nideal: own interpreters %.2f for N <= %u cores (N/cores beyond), like N processes; ONE interpreter ~N (one GIL)\n",
              1.0, std::thread::hardware_concurrency());
  for (auto& p : pool) p.release();  // interpreters live until exit (ARCHITECTURE.md §11)
  return 0;
}

int main(int argc, char** argv) { return pyfleet::tools::ToolMain(argc, argv, kTool, Run); }
