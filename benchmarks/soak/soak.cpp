// File: soak.cpp
//
// pyfleet-soak: a long run of mixed calls through the host API that checks every result
// and watches the process for leaks and deadlocks. 4 host threads share a manager of 2
// interpreters and make --calls calls (100,000 by default) of a fixed mix, decided by the
// call's number so the mix is exact whatever the threads do:
//   1 in --resnet_every (100)   ResNet-18 (B/examples/resnet18.pt) on one 224x224 image
//   1 in --raise_every (10)     a registered module function that raises ValueError: the
//                               error must be INVALID_ARGUMENT / builtins.ValueError
//   1 in --submit_every (5)     the GIL-bound example (B/examples/gil_bound.pt) through
//                               submit() with a deadline
//   the rest                    the GIL-bound example, called directly
// Results are compared with the first result of each model (allclose). Every
// --report_every calls (10,000) it prints RSS, open file descriptors and throughput; at
// the end the growth of both since the end of the warm-up (the first report), and it
// fails (exit 1) on a wrong result, an unexpected error, RSS growth above
// --max_rss_growth_pct or descriptor growth above --max_fd_growth. A watchdog fails the
// run (exit 2, with the manager's metrics) when no call finishes for --watchdog_seconds.
//
//   B/bin/pyfleet-soak                          # 100,000 calls
//   B/bin/pyfleet-soak --calls 20000 --report_every 2000
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "runtime/tools/process_stats.h"
#include "pyfleet/pyfleet.h"
#include "runtime/tools/tool_main.h"

ABSL_FLAG(int64_t, calls, 100000, "calls to make in all");
ABSL_FLAG(int, threads, 4, "host threads making calls");
ABSL_FLAG(int, interpreters, 2, "interpreters of the manager");
ABSL_FLAG(int, resnet_every, 100, "one call in this many is ResNet-18 (0: none)");
ABSL_FLAG(int, raise_every, 10, "one call in this many raises in model code (0: none)");
ABSL_FLAG(int, submit_every, 5, "one call in this many is GIL-bound through submit() (0: none)");
ABSL_FLAG(int64_t, report_every, 10000, "print RSS and descriptors every this many calls");
ABSL_FLAG(double, max_rss_growth_pct, 10.0, "fail if RSS grows more than this after the warm-up");
ABSL_FLAG(int, max_fd_growth, 0, "fail if open descriptors grow more than this after the warm-up");
ABSL_FLAG(int, watchdog_seconds, 120, "fail if no call finishes for this long");
ABSL_FLAG(std::string, examples, "", "folder of resnet18.pt and gil_bound.pt (default: <bin>/../examples)");

namespace {

constexpr pyfleet::tools::ToolInfo kTool = {
    "pyfleet-soak", "pyfleet-soak [--calls N] [--threads T] [--interpreters I] [flags]",
    "Soak test of the host API: mixed ResNet-18, GIL-bound and raising calls from several threads, every result "
    "checked, RSS and open descriptors printed as it goes; fails on a wrong result, growth after the warm-up or "
    "a stall (watchdog).",
    __FILE__};

constexpr char kFaultSource[] = "def fail(i):\n    raise ValueError('soak call %d' % i)\n";

int OpenFds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
    --n;  // the directory stream's own descriptor
  }
  return n;
}

std::string DefaultExamples() {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "examples";
  std::string path(self, static_cast<size_t>(n));
  path = path.substr(0, path.rfind('/'));  // bin
  return path.substr(0, path.rfind('/')) + "/examples";
}

enum class Kind { kResnet, kRaise, kGil, kGilSubmit };

struct Sample {
  int64_t calls;
  double seconds;
  long rss_kb;
  int fds;
};

int Run() {
  const int64_t total = absl::GetFlag(FLAGS_calls);
  const int threads = absl::GetFlag(FLAGS_threads);
  const int resnet_every = absl::GetFlag(FLAGS_resnet_every);
  const int raise_every = absl::GetFlag(FLAGS_raise_every);
  const int submit_every = absl::GetFlag(FLAGS_submit_every);
  const int64_t report_every = std::max<int64_t>(1, absl::GetFlag(FLAGS_report_every));
  const std::string examples =
      absl::GetFlag(FLAGS_examples).empty() ? DefaultExamples() : absl::GetFlag(FLAGS_examples);
  at::set_num_threads(1);  // one op thread per call: the host threads are the parallelism

  const double t0 = pyfleet::internal::NowSeconds();
  pyfleet::InterpreterManager manager(static_cast<size_t>(absl::GetFlag(FLAGS_interpreters)));
  manager.registerModuleSource("soak_faults", kFaultSource);
  pyfleet::ReplicatedObj resnet = manager.loadPackage(examples + "/resnet18.pt").loadPickle("model", "model.pkl");
  pyfleet::ReplicatedObj gil = manager.loadPackage(examples + "/gil_bound.pt").loadPickle("model", "model.pkl");
  pyfleet::ReplicatedObj fail = [&] {
    pyfleet::InterpreterSession s = manager.acquireOne();
    return s.createMovable(s.global("soak_faults", "fail"));
  }();
  const at::Tensor image = at::randn({1, 3, 224, 224}, at::TensorOptions().dtype(at::kFloat));
  const at::Tensor row = at::randn({1, 8});
  const at::Tensor resnet_expected = resnet({image}).toTensor();
  const at::Tensor gil_expected = gil({row}).toTensor();
  std::printf("pyfleet-soak: %lld calls, %d threads, %d interpreters, torch threads %d, started in %.1f s\n",
              static_cast<long long>(total), threads, absl::GetFlag(FLAGS_interpreters), at::get_num_threads(),
              pyfleet::internal::NowSeconds() - t0);
  std::printf("mix: 1 in %d calls ResNet-18, 1 in %d raising (ValueError), 1 in %d GIL-bound by submit(), the rest "
              "GIL-bound called directly\n",
              resnet_every, raise_every, submit_every);
  std::printf("%10s %10s %9s %9s %6s %8s %8s %8s %8s\n", "calls", "elapsed_s", "calls/s", "rss_MB", "fds", "resnet",
              "gil", "raised", "submits");
  std::fflush(stdout);

  auto kind_of = [&](int64_t i) {
    if (resnet_every > 0 && i % resnet_every == 0) return Kind::kResnet;
    if (raise_every > 0 && i % raise_every == 1) return Kind::kRaise;
    if (submit_every > 0 && i % submit_every == 2) return Kind::kGilSubmit;
    return Kind::kGil;
  };

  std::atomic<int64_t> next{0}, done{0}, failures{0};
  std::atomic<int64_t> counts[4] = {0, 0, 0, 0};
  std::mutex report_mu;
  std::vector<Sample> samples;
  const double start = pyfleet::internal::NowSeconds();
  auto fail_with = [&](const std::string& what) {
    if (failures.fetch_add(1) < 20) std::fprintf(stderr, "pyfleet-soak: FAILED: %s\n", what.c_str());
  };
  auto worker = [&] {
    for (int64_t i = next++; i < total; i = next++) {
      const Kind kind = kind_of(i);
      try {
        switch (kind) {
          case Kind::kResnet:
            if (!resnet({image}).toTensor().allclose(resnet_expected, 1e-4, 1e-5)) fail_with("ResNet-18 result");
            break;
          case Kind::kGil:
            if (!gil({row}).toTensor().allclose(gil_expected, 1e-5, 1e-6)) fail_with("GIL-bound result");
            break;
          case Kind::kGilSubmit: {
            pyfleet::CallOptions options;
            options.timeout = std::chrono::seconds(60);
            if (!gil.submit({row}, options).get().toTensor().allclose(gil_expected, 1e-5, 1e-6)) {
              fail_with("GIL-bound result (submit)");
            }
            break;
          }
          case Kind::kRaise:
            try {
              fail({c10::IValue(i)});
              fail_with("the raising call returned");
            } catch (const pyfleet::Error& e) {
              if (e.status().code() != absl::StatusCode::kInvalidArgument || e.pythonType() != "builtins.ValueError" ||
                  e.status().message().find("soak call " + std::to_string(i)) == absl::string_view::npos) {
                fail_with("unexpected error of the raising call: " + e.status().ToString());
              }
            }
            break;
        }
      } catch (const std::exception& e) {
        fail_with(std::string("call ") + std::to_string(i) + ": " + e.what());
      }
      ++counts[static_cast<int>(kind)];
      const int64_t finished = ++done;
      if (finished % report_every == 0 || finished == total) {
        Sample s{finished, pyfleet::internal::NowSeconds() - start, pyfleet::internal::RssKb(), OpenFds()};
        std::lock_guard<std::mutex> lock(report_mu);
        samples.push_back(s);
        std::printf("%10lld %10.1f %9.0f %9.1f %6d %8lld %8lld %8lld %8lld\n", static_cast<long long>(s.calls),
                    s.seconds, s.calls / s.seconds, s.rss_kb / 1024.0, s.fds,
                    static_cast<long long>(counts[0].load()),
                    static_cast<long long>(counts[2].load() + counts[3].load()),
                    static_cast<long long>(counts[1].load()), static_cast<long long>(counts[3].load()));
        std::fflush(stdout);
      }
    }
  };

  // The watchdog: no call finished for --watchdog_seconds means a deadlock (or a stall
  // as bad as one).
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool finished_all = false;
  std::thread watchdog([&] {
    const auto limit = std::chrono::seconds(absl::GetFlag(FLAGS_watchdog_seconds));
    int64_t last = -1;
    auto last_change = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(watch_mu);
    while (!watch_cv.wait_for(lock, std::chrono::seconds(1), [&] { return finished_all; })) {
      const int64_t now_done = done.load();
      if (now_done != last) {
        last = now_done;
        last_change = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last_change > limit) {
        pyfleet::Metrics m = manager.metrics();
        std::fprintf(stderr, "pyfleet-soak: FAILED: no call finished for %lld s (%lld of %lld done): deadlock?\n",
                     static_cast<long long>(limit.count()), static_cast<long long>(now_done),
                     static_cast<long long>(total));
        for (const pyfleet::InterpreterMetrics& im : m.interpreters) {
          std::fprintf(stderr, "  interpreter %d: busy_now %lld, stuck %d, calls %llu\n", im.index,
                       static_cast<long long>(im.busy_now), im.stuck ? 1 : 0,
                       static_cast<unsigned long long>(im.calls));
        }
        std::fprintf(stderr, "  queue depth %lld\n", static_cast<long long>(m.queue_depth));
        std::fflush(stderr);
        std::_Exit(2);
      }
    }
  });
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (std::thread& t : pool) t.join();
  {
    std::lock_guard<std::mutex> lock(watch_mu);
    finished_all = true;
  }
  watch_cv.notify_all();
  watchdog.join();

  const pyfleet::Metrics m = manager.metrics();
  int status = failures.load() == 0 ? 0 : 1;
  std::printf("done: %lld calls in %.1f s (%.0f calls/s); %llu errors recorded by the manager (the raising calls), "
              "%lld failed checks\n",
              static_cast<long long>(done.load()), pyfleet::internal::NowSeconds() - start,
              done.load() / (pyfleet::internal::NowSeconds() - start),
              static_cast<unsigned long long>(m.total.errors), static_cast<long long>(failures.load()));
  if (samples.size() >= 2) {
    const Sample& warm = samples.front();  // the warm-up ends with the first report
    const Sample& last = samples.back();
    const double rss_pct = 100.0 * (last.rss_kb - warm.rss_kb) / static_cast<double>(warm.rss_kb);
    std::printf("after the warm-up (%lld calls): RSS %.1f -> %.1f MB (%+.2f%%), open descriptors %d -> %d (%+d)\n",
                static_cast<long long>(warm.calls), warm.rss_kb / 1024.0, last.rss_kb / 1024.0, rss_pct, warm.fds,
                last.fds, last.fds - warm.fds);
    if (rss_pct > absl::GetFlag(FLAGS_max_rss_growth_pct)) {
      std::fprintf(stderr, "pyfleet-soak: FAILED: RSS grew %.2f%% after the warm-up (limit %.1f%%)\n", rss_pct,
                   absl::GetFlag(FLAGS_max_rss_growth_pct));
      status = 1;
    }
    if (last.fds - warm.fds > absl::GetFlag(FLAGS_max_fd_growth)) {
      std::fprintf(stderr, "pyfleet-soak: FAILED: %d more open descriptors after the warm-up (limit %d)\n",
                   last.fds - warm.fds, absl::GetFlag(FLAGS_max_fd_growth));
      status = 1;
    }
  }
  std::printf("pyfleet-soak: %s\n", status == 0 ? "OK" : "FAILED");
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  return pyfleet::tools::ToolMain(argc, argv, kTool, [](const std::vector<char*>& args) {
    if (args.size() > 1) {
      std::fprintf(stderr, "pyfleet-soak: unexpected argument %s (see --help)\n", args[1]);
      return 2;
    }
    return Run();
  });
}
