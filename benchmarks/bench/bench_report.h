// File: bench_report.h
//
// pyfleet-bench's figures: what one measurement gives (a Sample), how the rounds of one
// (package, strategy, threads) are pooled into a Row, and the Row tables as text, JSON
// and CSV.
//
//   pyfleet::bench::Pool pool;
//   pool.add(sample);                        // once per round
//   pyfleet::bench::Row row = pool.row("mlp", "multi_python", 2, /*cores=*/2);
//   std::cout << pyfleet::bench::FormatTable({row});
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyfleet::bench {

// One measurement: one setup (its processes), one window.
struct Sample {
  uint64_t items = 0;                 // calls that ended inside the window, all threads
  double window_s = 0;                // the window's length
  std::vector<int64_t> latencies_ns;  // each of those calls
  double cpu_s = 0;                   // CPU time of all the setup's processes in the window
  double cpu_wall_s = 0;              // the wall time over which cpu_s was read
  double rss_mb = 0;                  // the setup's processes together, largest sample
  double pss_mb = 0;                  //   in the window
};

// One line of the results (the JSON "results" entries and the CSV rows).
struct Row {
  std::string package;
  std::string strategy;
  int threads = 0;
  double items_per_s = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0;
  double cpu_util = 0;  // CPU time / wall / cores, 0..1
  double rss_mb = 0, pss_mb = 0;
};

// The rounds of one (package, strategy, threads): throughput, latencies and CPU pooled
// over all windows; memory the median of the rounds' figures.
class Pool {
 public:
  void add(Sample sample);
  bool empty() const { return rounds_ == 0; }
  Row row(std::string package, std::string strategy, int threads, int cores) const;

 private:
  int rounds_ = 0;
  uint64_t items_ = 0;
  double window_s_ = 0, cpu_s_ = 0, cpu_wall_s_ = 0;
  std::vector<int64_t> latencies_ns_;
  std::vector<double> rss_mb_, pss_mb_;
};

struct Machine {
  int cores = 0;
  std::string cpu_model, kernel, torch_version, python_version, date;
  // /proc/loadavg's 1, 5 and 15 minute figures when the run started and ended: other
  // work on the machine shows here (and in the cpu column), not in the figures' spread.
  std::string load_avg_start, load_avg_end;
};

// LoadAverage()
//
// The 1, 5 and 15 minute load averages ("0.52 0.61 0.70"), or "" if unreadable.
std::string LoadAverage();

// ReadMachine()
//
// Cores, CPU model, kernel and the date (UTC) of this machine; `python` (Debian's
// python3) is asked for its version and torch's.
Machine ReadMachine(const std::string& python);

// How the figures were taken, written beside them.
struct Settings {
  std::vector<std::string> strategies;
  std::vector<int> threads;
  double seconds = 0, warmup = 0;
  int rounds = 0;
};

// The results as an aligned text table, one line per row.
std::string FormatTable(const std::vector<Row>& rows);

// FormatComparisons()
//
// For each package: multi_python's throughput over every other strategy's at the same
// thread count, its scaling over its lowest thread count, and its PSS over
// python_processes'. Empty if there is nothing to compare.
std::string FormatComparisons(const std::vector<Row>& rows);

// {"machine": {...}, "settings": {...}, "results": [Row...]}.
std::string ToJson(const Machine& machine, const Settings& settings, const std::vector<Row>& rows);

// A header line and one line per row, the JSON "results" fields in order.
std::string ToCsv(const std::vector<Row>& rows);

}  // namespace pyfleet::bench
