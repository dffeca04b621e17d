// File: bench_report.cpp — see bench_report.h.
#include "benchmarks/bench/bench_report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace pyfleet::bench {
namespace {

// Nearest-rank quantile of sorted `v` (0 if empty), in ms.
double QuantileMs(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// A number as JSON: finite, `digits` decimals.
std::string JsonNumber(double v, int digits) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.*f", digits, v);
}

// The output of `command` (its first line), or "" if it fails.
std::string CommandLine(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(command.c_str(), "r"), pclose);
  if (!p) return "";
  char buf[512];
  std::string out;
  while (std::fgets(buf, sizeof(buf), p.get()) != nullptr) out += buf;
  return std::string(absl::StripAsciiWhitespace(out));
}

const Row* Find(const std::vector<Row>& rows, const std::string& package, const std::string& strategy, int threads) {
  for (const Row& r : rows) {
    if (r.package == package && r.strategy == strategy && r.threads == threads) return &r;
  }
  return nullptr;
}

}  // namespace

void Pool::add(Sample sample) {
  ++rounds_;
  items_ += sample.items;
  window_s_ += sample.window_s;
  cpu_s_ += sample.cpu_s;
  cpu_wall_s_ += sample.cpu_wall_s;
  latencies_ns_.insert(latencies_ns_.end(), sample.latencies_ns.begin(), sample.latencies_ns.end());
  rss_mb_.push_back(sample.rss_mb);
  pss_mb_.push_back(sample.pss_mb);
}

Row Pool::row(std::string package, std::string strategy, int threads, int cores) const {
  Row r;
  r.package = std::move(package);
  r.strategy = std::move(strategy);
  r.threads = threads;
  r.items_per_s = window_s_ > 0 ? static_cast<double>(items_) / window_s_ : 0;
  std::vector<int64_t> sorted = latencies_ns_;
  std::sort(sorted.begin(), sorted.end());
  r.p50_ms = QuantileMs(sorted, 0.50);
  r.p95_ms = QuantileMs(sorted, 0.95);
  r.p99_ms = QuantileMs(sorted, 0.99);
  r.cpu_util = cpu_wall_s_ > 0 && cores > 0 ? cpu_s_ / cpu_wall_s_ / cores : 0;
  r.rss_mb = Median(rss_mb_);
  r.pss_mb = Median(pss_mb_);
  return r;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (!(in >> a >> b >> c)) return "";
  return absl::StrCat(a, " ", b, " ", c);
}

Machine ReadMachine(const std::string& python) {
  Machine m;
  m.load_avg_start = LoadAverage();
  m.cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (absl::StartsWith(line, "model name")) {
      m.cpu_model = std::string(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
      break;
    }
  }
  utsname u;
  if (uname(&u) == 0) m.kernel = absl::StrCat(u.sysname, " ", u.release);
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm;
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
  m.date = date;
  // Without importing torch (that takes a second): its installed version, and Debian's
  // package version, which says more than the "1.13.0a0" torch reports of itself.
  const std::string versions = CommandLine(absl::StrCat(
      python,
      " -c \"import platform, importlib.metadata as m; print(platform.python_version(), m.version('torch'))\" "
      "2>/dev/null"));
  std::vector<std::string> v = absl::StrSplit(versions, ' ', absl::SkipEmpty());
  m.python_version = v.size() > 0 ? v[0] : "unknown";
  m.torch_version = v.size() > 1 ? v[1] : "unknown";
  const std::string deb = CommandLine("dpkg-query -W -f='${Version}' python3-torch 2>/dev/null");
  if (!deb.empty()) absl::StrAppend(&m.torch_version, " (Debian python3-torch ", deb, ")");
  return m;
}

std::string FormatTable(const std::vector<Row>& rows) {
  size_t package_width = 7;
  for (const Row& r : rows) package_width = std::max(package_width, r.package.size());
  std::string out = absl::StrFormat("%-*s  %-16s %7s %11s %9s %9s %9s %5s %8s %8s\n", package_width, "package",
                                    "strategy", "threads", "items/s", "p50 ms", "p95 ms", "p99 ms", "cpu", "RSS MB",
                                    "PSS MB");
  for (const Row& r : rows) {
    absl::StrAppendFormat(&out, "%-*s  %-16s %7d %11.1f %9.3f %9.3f %9.3f %4.0f%% %8.0f %8.0f\n", package_width,
                          r.package, r.strategy, r.threads, r.items_per_s, r.p50_ms, r.p95_ms, r.p99_ms,
                          100 * r.cpu_util, r.rss_mb, r.pss_mb);
  }
  return out;
}

std::string FormatComparisons(const std::vector<Row>& rows) {
  std::vector<std::string> packages;
  std::map<std::string, std::vector<int>> threads;  // package -> multi_python's counts
  for (const Row& r : rows) {
    if (std::find(packages.begin(), packages.end(), r.package) == packages.end()) packages.push_back(r.package);
    if (r.strategy == "multi_python") threads[r.package].push_back(r.threads);
  }
  std::string out;
  for (const std::string& package : packages) {
    std::vector<int>& ts = threads[package];
    std::sort(ts.begin(), ts.end());
    for (int t : ts) {
      const Row* multi = Find(rows, package, "multi_python", t);
      std::vector<std::string> parts;
      if (t != ts.front()) {
        const Row* base = Find(rows, package, "multi_python", ts.front());
        if (base->items_per_s > 0) {
          parts.push_back(absl::StrFormat("%.2fx itself at %d", multi->items_per_s / base->items_per_s, ts.front()));
        }
      }
      for (const char* other : {"one_python", "python_threads", "python_processes", "torchscript"}) {
        const Row* o = Find(rows, package, other, t);
        if (o != nullptr && o->items_per_s > 0) {
          parts.push_back(absl::StrFormat("%.2fx %s", multi->items_per_s / o->items_per_s, other));
        }
      }
      const Row* processes = Find(rows, package, "python_processes", t);
      if (processes != nullptr && processes->pss_mb > 0) {
        parts.push_back(absl::StrFormat("PSS %.2fx python_processes'", multi->pss_mb / processes->pss_mb));
      }
      if (!parts.empty()) {
        absl::StrAppendFormat(&out, "  %s, %d thread%s: multi_python = %s\n", package, t, t == 1 ? "" : "s",
                              absl::StrJoin(parts, ", "));
      }
    }
  }
  return out;
}

std::string ToJson(const Machine& machine, const Settings& settings, const std::vector<Row>& rows) {
  std::vector<std::string> strategies, results;
  for (const std::string& s : settings.strategies) strategies.push_back(JsonString(s));
  for (const Row& r : rows) {
    results.push_back(absl::StrCat(
        "    {\"package\": ", JsonString(r.package), ", \"strategy\": ", JsonString(r.strategy),
        ", \"threads\": ", r.threads, ", \"items_per_s\": ", JsonNumber(r.items_per_s, 2),
        ", \"p50_ms\": ", JsonNumber(r.p50_ms, 4), ", \"p95_ms\": ", JsonNumber(r.p95_ms, 4),
        ", \"p99_ms\": ", JsonNumber(r.p99_ms, 4), ", \"cpu_util\": ", JsonNumber(r.cpu_util, 3),
        ", \"rss_mb\": ", JsonNumber(r.rss_mb, 1), ", \"pss_mb\": ", JsonNumber(r.pss_mb, 1), "}"));
  }
  return absl::StrCat(
      "{\n  \"machine\": {\"cores\": ", machine.cores, ", \"cpu_model\": ", JsonString(machine.cpu_model),
      ", \"kernel\": ", JsonString(machine.kernel), ", \"torch_version\": ", JsonString(machine.torch_version),
      ", \"python_version\": ", JsonString(machine.python_version), ", \"date\": ", JsonString(machine.date),
      ", \"load_avg_start\": ", JsonString(machine.load_avg_start), ", \"load_avg_end\": ",
      JsonString(machine.load_avg_end), "},\n  \"settings\": {\"strategies\": [", absl::StrJoin(strategies, ", "), "], \"threads\": [",
      absl::StrJoin(settings.threads, ", "), "], \"seconds\": ", JsonNumber(settings.seconds, 3),
      ", \"rounds\": ", settings.rounds, ", \"warmup_s\": ", JsonNumber(settings.warmup, 3),
      ", \"intra_op_threads\": 1},\n  \"results\": [\n", absl::StrJoin(results, ",\n"), "\n  ]\n}\n");
}

std::string ToCsv(const std::vector<Row>& rows) {
  std::string out = "package,strategy,threads,items_per_s,p50_ms,p95_ms,p99_ms,cpu_util,rss_mb,pss_mb\n";
  for (const Row& r : rows) {
    // Package names are file names: quote them if they hold a comma or a quote.
    std::string package = r.package;
    if (package.find_first_of(",\"") != std::string::npos) {
      package = absl::StrCat("\"", absl::StrReplaceAll(package, {{"\"", "\"\""}}), "\"");
    }
    absl::StrAppendFormat(&out, "%s,%s,%d,%.2f,%.4f,%.4f,%.4f,%.3f,%.1f,%.1f\n", package, r.strategy, r.threads,
                          r.items_per_s, r.p50_ms, r.p95_ms, r.p99_ms, r.cpu_util, r.rss_mb, r.pss_mb);
  }
  return out;
}

}  // namespace pyfleet::bench
