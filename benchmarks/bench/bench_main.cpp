// File: bench_main.cpp
//
// pyfleet-bench: serves the same torch.package model five ways, side by side, and prints
// throughput, latency, CPU and memory for each:
//   multi_python      T host threads over T pyfleet interpreters (one ReplicatedObj)
//   one_python        T host threads on ONE pyfleet interpreter (one GIL)
//   torchscript       T host threads on the TorchScript twin NAME.jit.pt (torch::jit::load)
//   python_threads    Debian's python3, stock PackageImporter, T Python threads
//   python_processes  T python3 processes, one replica each
//
//   pyfleet-bench B/examples/gil_bound.pt B/examples/resnet18.pt --threads 1,2
//                 --seconds 3 --json out.json --csv out.csv --plot out.png
//
// Every measurement is a fresh setup of its own processes (pyfleet-bench-worker or
// bench_worker.py), so that the memory read is that setup's alone; this process links no
// LibTorch for the same reason. Measurements are interleaved: each round runs every
// package, thread count and strategy once (the strategies' order rotating each round),
// so that drift on a busy machine hits all of them alike; the rounds are then pooled.
// Intra-op threads are 1 everywhere: the comparison is about the GIL.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "benchmarks/bench/bench_process.h"
#include "benchmarks/bench/bench_protocol.h"
#include "benchmarks/bench/bench_report.h"
#include "runtime/tools/tool_main.h"

ABSL_FLAG(std::string, threads, "1,2", "thread counts T, comma-separated");
ABSL_FLAG(double, seconds, 3.0, "seconds each measurement's window lasts, per round");
ABSL_FLAG(int, rounds, 3, "rounds: every measurement runs this many times, interleaved");
ABSL_FLAG(double, warmup, 1.0, "seconds of calls before a window (each thread, after loading)");
ABSL_FLAG(std::string, strategies, "multi_python,one_python,torchscript,python_threads,python_processes",
          "strategies to run, comma-separated");
ABSL_FLAG(std::string, json, "", "write the machine, the settings and the results as JSON to this file");
ABSL_FLAG(std::string, csv, "", "write the results as CSV to this file");
ABSL_FLAG(std::string, plot, "", "write a PNG plot (python3-matplotlib) to this file");

namespace pyfleet::bench {
namespace {

constexpr tools::ToolInfo kTool = {
    "pyfleet-bench",
    "pyfleet-bench PACKAGE... [--threads T[,T...]] [--seconds S] [--rounds R] [--warmup W]\n"
    "                     [--strategies LIST] [--json FILE] [--csv FILE] [--plot FILE.png]",
    "Serves each torch.package (model/model.pkl called on the arguments in model/example.pkl)\n"
    "five ways and measures them side by side: multi_python (T threads over T pyfleet\n"
    "interpreters), one_python (T threads on ONE pyfleet interpreter), torchscript (T threads\n"
    "on the TorchScript twin NAME.jit.pt beside the package; skipped if there is none),\n"
    "python_threads (Debian's python3 and the stock PackageImporter, T threads) and\n"
    "python_processes (T python3 processes). For each: items/s, p50/p95/p99 latency, CPU use\n"
    "(CPU time / wall / cores) and the memory (RSS, PSS) of all the setup's processes while it\n"
    "runs. Each measurement is a fresh setup in processes of its own; measurements are\n"
    "interleaved over the rounds. Intra-op threads are 1 everywhere; autograd is off.",
    __FILE__};

const std::vector<std::string> kStrategies = {"multi_python", "one_python", "torchscript", "python_threads",
                                              "python_processes"};

struct Package {
  std::string name;     // file name without ".pt"
  std::string path;
  std::string twin;     // NAME.jit.pt, "" if none
  std::string example;  // the example saved for LibTorch (torchscript), "" if none
};

struct Config {
  const Package* package;
  std::string strategy;
  int threads;
};

// Everything a measurement needs to start its processes.
struct Tools {
  std::string worker;       // pyfleet-bench-worker
  std::string python;       // Debian's python3
  std::string py_worker;    // bench_worker.py
  std::string plot_script;  // plot_bench.py
};

// This program's own path (the worker is installed beside it).
std::string SelfPath() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  return std::string(buf, static_cast<size_t>(n));
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::vector<std::string> ParseStrategies(const std::string& list) {
  std::vector<std::string> out;
  for (absl::string_view s : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    const std::string name(absl::StripAsciiWhitespace(s));
    if (std::find(kStrategies.begin(), kStrategies.end(), name) == kStrategies.end()) {
      throw std::invalid_argument(
          absl::StrCat("unknown strategy '", name, "' (known: ", absl::StrJoin(kStrategies, ", "), ")"));
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  if (out.empty()) throw std::invalid_argument("--strategies is empty");
  return out;
}

std::vector<int> ParseThreads(const std::string& list) {
  std::vector<int> out;
  for (absl::string_view s : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    int t = 0;
    if (!absl::SimpleAtoi(s, &t) || t < 1 || t > 256) {
      throw std::invalid_argument(absl::StrCat("--threads: '", s, "' is not a thread count (1..256)"));
    }
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  }
  if (out.empty()) throw std::invalid_argument("--threads is empty");
  std::sort(out.begin(), out.end());
  return out;
}

Package OpenPackage(const std::string& path) {
  if (!IsRegularFile(path)) throw std::invalid_argument(absl::StrCat("package not found: ", path));
  Package p;
  p.path = path;
  std::string base = path.substr(path.rfind('/') + 1);
  p.name = absl::EndsWith(base, ".pt") ? base.substr(0, base.size() - 3) : base;
  const std::string twin = absl::StrCat(Dirname(path), "/", p.name, ".jit.pt");
  if (IsRegularFile(twin)) p.twin = twin;
  return p;
}

// A private temporary folder, removed with what it holds.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    path_ = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/pyfleet-bench-XXXXXX");
    if (mkdtemp(path_.data()) == nullptr) throw std::runtime_error("cannot make a temporary folder");
  }
  ~TempDir() {
    for (const std::string& f : files_) unlink(f.c_str());
    rmdir(path_.c_str());
  }
  std::string file(const std::string& name) {
    files_.push_back(absl::StrCat(path_, "/", name));
    return files_.back();
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// The environment of every worker: one intra-op thread from the start (the workers also
// call at::set_num_threads(1) / torch.set_num_threads(1)), no bytecode written.
const std::vector<std::string> kWorkerEnv = {"OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1", "PYTHONDONTWRITEBYTECODE=1"};

// Runs one measurement of `c`: starts its processes, waits until all are warm, gives
// them one window and reads their CPU time and memory during it.
Sample Measure(const Config& c, const Tools& tools, double seconds, double warmup, std::set<std::string>* versions) {
  const std::string warm = absl::StrFormat("%.3f", warmup);
  const std::string threads = absl::StrCat(c.threads);
  std::vector<std::vector<std::string>> commands;
  if (c.strategy == "python_threads" || c.strategy == "python_processes") {
    const bool processes = c.strategy == "python_processes";
    for (int i = 0; i < (processes ? c.threads : 1); ++i) {
      commands.push_back({tools.python, tools.py_worker, "--package", c.package->path, "--threads",
                          processes ? "1" : threads, "--warmup", warm});
    }
  } else {
    std::vector<std::string> cmd = {tools.worker, "--strategy=" + c.strategy, "--package=" + c.package->path,
                                    "--threads=" + threads, "--warmup=" + warm};
    if (c.strategy == "torchscript") {
      cmd.push_back("--twin=" + c.package->twin);
      cmd.push_back("--example=" + c.package->example);
    }
    commands.push_back(cmd);
  }
  std::vector<std::unique_ptr<WorkerProcess>> procs;
  for (auto& cmd : commands) procs.push_back(std::make_unique<WorkerProcess>(cmd, kWorkerEnv));
  for (auto& p : procs) {
    const std::string ready = p->readLine(absl::Seconds(600), kReady);
    for (absl::string_view word : absl::StrSplit(ready, ' ')) {
      if (absl::StartsWith(word, "torch=") || absl::StartsWith(word, "python=")) versions->insert(std::string(word));
    }
  }
  // See Note [Measuring window] in bench_protocol.h.
  const int64_t t0 = MonotonicNs() + 200'000'000;  // time for every "go" to arrive
  const int64_t t_end = t0 + static_cast<int64_t>(seconds * 1e9);
  for (auto& p : procs) p->writeLine(absl::StrCat(kGo, " ", t0, " ", t_end));
  auto cpu = [&] {
    double s = 0;
    for (auto& p : procs) s += CpuSeconds(p->pid());
    return s;
  };
  Sample sample;
  sample.window_s = seconds;
  SleepUntilNs(t0);
  const int64_t w0 = MonotonicNs();
  const double cpu0 = cpu();
  for (double at : {0.5, 0.9}) {
    SleepUntilNs(t0 + static_cast<int64_t>(at * seconds * 1e9));
    // On a busy machine this thread may wake after the window: the workers may have
    // reported and exited, and a sample then would miss them. Such a sample is skipped.
    if (MonotonicNs() >= t_end) continue;
    ProcessMemory sum;
    bool complete = true;
    for (auto& p : procs) {
      std::optional<ProcessMemory> m = ReadMemory(p->pid());
      if (!m.has_value()) {
        complete = false;  // it exited (after the window, or failed: its result says which)
        break;
      }
      sum.rss_kb += m->rss_kb;
      sum.pss_kb += m->pss_kb;
    }
    if (!complete) continue;
    sample.rss_mb = std::max(sample.rss_mb, sum.rss_kb / 1024.0);
    sample.pss_mb = std::max(sample.pss_mb, sum.pss_kb / 1024.0);
  }
  SleepUntilNs(t_end);
  sample.cpu_s = cpu() - cpu0;
  sample.cpu_wall_s = static_cast<double>(MonotonicNs() - w0) / 1e9;
  for (auto& p : procs) {
    const std::string result = p->readLine(absl::Seconds(seconds + 300), kResult);
    std::vector<absl::string_view> words = absl::StrSplit(result, ' ', absl::SkipEmpty());
    uint64_t n = 0;
    if (words.size() < 2 || !absl::SimpleAtoi(words[1], &n) || words.size() != n + 2) {
      throw std::runtime_error(absl::StrCat("malformed result from ", p->description(), ": ", result.substr(0, 200)));
    }
    sample.items += n;
    for (size_t i = 2; i < words.size(); ++i) {
      int64_t ns = 0;
      if (!absl::SimpleAtoi(words[i], &ns)) throw std::runtime_error("malformed latency from " + p->description());
      sample.latencies_ns.push_back(ns);
    }
  }
  for (auto& p : procs) p->wait(absl::Seconds(60));
  return sample;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error(absl::StrCat("cannot write ", path));
}

// Saves each twin-holding package's example with torch.save, for the torchscript worker;
// a package whose example cannot be saved loses its twin (with a note).
void SaveExamples(std::vector<Package>& packages, const Tools& tools, TempDir& tmp) {
  for (Package& p : packages) {
    if (p.twin.empty()) continue;
    const std::string out = tmp.file(p.name + ".example.pt");
    WorkerProcess saver({tools.python, tools.py_worker, "--save-example", p.path, out}, kWorkerEnv);
    try {
      saver.wait(absl::Seconds(600));
      p.example = out;
    } catch (const std::exception& e) {
      std::printf("note: torchscript skipped for %s: its example could not be saved for LibTorch:\n%s\n",
                  p.name.c_str(), e.what());
      p.twin.clear();
    }
  }
}

int Run(const std::vector<char*>& args) {
  const std::vector<std::string> strategies = ParseStrategies(absl::GetFlag(FLAGS_strategies));
  const std::vector<int> thread_counts = ParseThreads(absl::GetFlag(FLAGS_threads));
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const double warmup = absl::GetFlag(FLAGS_warmup);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  if (!(seconds > 0 && seconds <= 3600)) throw std::invalid_argument("--seconds must be in (0, 3600]");
  if (!(warmup >= 0 && warmup <= 600)) throw std::invalid_argument("--warmup must be in [0, 600]");
  if (rounds < 1 || rounds > 100) throw std::invalid_argument("--rounds must be 1..100");
  if (args.size() < 2) throw std::invalid_argument(absl::StrCat("no PACKAGE given; usage: ", kTool.usage));
  std::vector<Package> packages;
  for (size_t i = 1; i < args.size(); ++i) packages.push_back(OpenPackage(args[i]));

  Tools tools;
  tools.worker = Dirname(SelfPath()) + "/pyfleet-bench-worker";
  tools.python = PYFLEET_PYTHON;
  tools.py_worker = PYFLEET_BENCH_SOURCE_DIR "/bench_worker.py";
  tools.plot_script = PYFLEET_BENCH_SOURCE_DIR "/plot_bench.py";
  if (access(tools.worker.c_str(), X_OK) != 0) throw std::runtime_error("not found: " + tools.worker);
  if (access(tools.python.c_str(), X_OK) != 0) throw std::runtime_error("not found: " + tools.python);

  Machine machine = ReadMachine(tools.python);
  std::printf("pyfleet-bench: %s; %d cores, %s, %s; load average %s\n", machine.date.c_str(), machine.cores,
              machine.cpu_model.c_str(), machine.kernel.c_str(), machine.load_avg_start.c_str());
  std::printf("torch %s, python %s; intra-op threads 1 everywhere (at::set_num_threads(1), "
              "torch.set_num_threads(1)), autograd off\n",
              machine.torch_version.c_str(), machine.python_version.c_str());
  std::printf("%d round%s of %.3g s per measurement (after %.3g s warm-up), interleaved; threads %s\n", rounds,
              rounds == 1 ? "" : "s", seconds, warmup, absl::StrJoin(thread_counts, ",").c_str());
  std::fflush(stdout);

  TempDir tmp;
  const bool torchscript = std::find(strategies.begin(), strategies.end(), "torchscript") != strategies.end();
  if (torchscript) {
    for (const Package& p : packages) {
      if (p.twin.empty()) {
        std::printf("note: torchscript skipped for %s: no TorchScript twin %s.jit.pt beside it\n", p.name.c_str(),
                    p.name.c_str());
      }
    }
    SaveExamples(packages, tools, tmp);
  }

  // One group per (package, threads): its strategies, run one after the other.
  std::vector<std::vector<Config>> groups;
  for (const Package& p : packages) {
    for (int t : thread_counts) {
      groups.emplace_back();
      for (const std::string& s : strategies) {
        if (s != "torchscript" || !p.twin.empty()) groups.back().push_back({&p, s, t});
      }
    }
  }
  int total = 0;
  for (const auto& g : groups) total += static_cast<int>(g.size()) * rounds;
  std::map<std::tuple<std::string, std::string, int>, Pool> pools;
  std::set<std::string> versions;
  const bool progress = isatty(STDERR_FILENO);
  int done = 0;
  const int64_t start_ns = MonotonicNs();
  for (int round = 0; round < rounds; ++round) {
    for (std::vector<Config> group : groups) {
      if (group.empty()) continue;
      // The strategies' order rotates each round: none always runs first after a switch.
      std::rotate(group.begin(), group.begin() + round % group.size(), group.end());
      for (const Config& c : group) {
        ++done;
        if (progress) {
          const double elapsed = static_cast<double>(MonotonicNs() - start_ns) / 1e9;
          const std::string eta =
              done > 1 ? absl::StrFormat(", ~%.0f s left", elapsed / (done - 1) * (total - done + 1)) : "";
          std::fprintf(stderr, "\r\033[K[%d/%d] round %d/%d: %s %s, %d thread%s%s", done, total, round + 1, rounds,
                       c.package->name.c_str(), c.strategy.c_str(), c.threads, c.threads == 1 ? "" : "s",
                       eta.c_str());
          std::fflush(stderr);
        }
        try {
          pools[{c.package->name, c.strategy, c.threads}].add(Measure(c, tools, seconds, warmup, &versions));
        } catch (const std::exception& e) {
          if (progress) std::fprintf(stderr, "\r\033[K");
          throw std::runtime_error(absl::StrCat(c.package->name, " ", c.strategy, ", ", c.threads, " thread",
                                                c.threads == 1 ? "" : "s", ": ", e.what()));
        }
      }
    }
  }
  if (progress) std::fprintf(stderr, "\r\033[K");

  std::vector<Row> rows;
  for (const Package& p : packages) {
    for (const std::string& s : strategies) {
      for (int t : thread_counts) {
        auto it = pools.find({p.name, s, t});
        if (it != pools.end()) rows.push_back(it->second.row(p.name, s, t, machine.cores));
      }
    }
  }
  std::printf("\n%s", FormatTable(rows).c_str());
  const std::string comparisons = FormatComparisons(rows);
  if (!comparisons.empty()) std::printf("\nthroughput ratios (same run):\n%s", comparisons.c_str());
  machine.load_avg_end = LoadAverage();
  std::printf("workers reported: %s; load average at the end %s\n", absl::StrJoin(versions, " ").c_str(),
              machine.load_avg_end.c_str());

  Settings settings{strategies, thread_counts, seconds, warmup, rounds};
  const std::string json = ToJson(machine, settings, rows);
  std::string json_path = absl::GetFlag(FLAGS_json);
  if (!json_path.empty()) {
    WriteFile(json_path, json);
    std::printf("wrote %s\n", json_path.c_str());
  }
  if (!absl::GetFlag(FLAGS_csv).empty()) {
    WriteFile(absl::GetFlag(FLAGS_csv), ToCsv(rows));
    std::printf("wrote %s\n", absl::GetFlag(FLAGS_csv).c_str());
  }
  const std::string plot = absl::GetFlag(FLAGS_plot);
  if (!plot.empty()) {
    if (json_path.empty()) {
      json_path = tmp.file("results.json");
      WriteFile(json_path, json);
    }
    WorkerProcess plotter({tools.python, tools.plot_script, json_path, plot}, kWorkerEnv);
    try {
      plotter.wait(absl::Seconds(300));
    } catch (const std::exception& e) {
      throw std::runtime_error(absl::StrCat("plotting failed (it needs Debian's python3-matplotlib: scripts/deps):\n",
                                            e.what()));
    }
    std::printf("wrote %s\n", plot.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace pyfleet::bench

int main(int argc, char** argv) {
  return pyfleet::tools::ToolMain(argc, argv, pyfleet::bench::kTool, pyfleet::bench::Run);
}
