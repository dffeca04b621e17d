// File: bench_process.h
//
// The processes of one pyfleet-bench measurement, seen from the parent: start one with
// pipes on its stdin/stdout (stderr kept in an anonymous file, shown if it fails), trade
// protocol lines with it (bench_protocol.h), and read its CPU time and memory from /proc.
//
//   pyfleet::bench::WorkerProcess w({"/usr/bin/python3", "bench_worker.py", "--package", p});
//   std::string ready = w.readLine(absl::Seconds(600), "ready");
//   w.writeLine("go 123 456");
//   pyfleet::bench::ProcessMemory m = pyfleet::bench::ReadMemory(w.pid());
//
// Errors throw std::runtime_error whose message says which process, what it was waiting
// for, its exit status and the tail of its stderr.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace pyfleet::bench {

class WorkerProcess {
 public:
  // WorkerProcess::WorkerProcess()
  //
  // Starts argv[0] (a path) with `argv`, the parent's environment plus `extra_env`
  // ("NAME=value"). Throws std::runtime_error if it cannot be started.
  WorkerProcess(std::vector<std::string> argv, const std::vector<std::string>& extra_env);
  // Kills the process (SIGKILL) if it is still running, and reaps it.
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  pid_t pid() const { return pid_; }

  // WorkerProcess::readLine()
  //
  // The next line of its stdout, without the newline, which must start with the word
  // `expected`. Throws (with the stderr tail) if the process ends first, the line is
  // something else, or `timeout` passes.
  std::string readLine(absl::Duration timeout, const std::string& expected);

  // WorkerProcess::writeLine()
  //
  // Writes `line` and a newline to its stdin. Throws if it is gone.
  void writeLine(const std::string& line);

  // WorkerProcess::wait()
  //
  // Waits (up to `timeout`, then kills) for it to exit; throws unless it exited 0.
  void wait(absl::Duration timeout);

  // The command line, for messages.
  const std::string& description() const { return description_; }

 private:
  [[noreturn]] void fail(const std::string& what);
  std::string stderrTail() const;

  std::string description_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;  // an unlinked temporary file
  std::string buffer_;  // stdout read but not yet returned
  bool reaped_ = false;
  int status_ = 0;
};

// Resident memory of one process, from /proc/<pid>/smaps_rollup, in kB.
struct ProcessMemory {
  long rss_kb = 0;
  long pss_kb = 0;
};

// ReadMemory()
//
// RSS and PSS of `pid` (PSS: each page divided by the number of processes mapping it);
// nullopt if /proc/<pid>/smaps_rollup cannot be read (the process is gone).
std::optional<ProcessMemory> ReadMemory(pid_t pid);

// CpuSeconds()
//
// User + system CPU time of `pid`, all its threads, from /proc/<pid>/stat (clock ticks,
// usually 10 ms). Throws if it cannot be read.
double CpuSeconds(pid_t pid);

// MonotonicNs()
//
// CLOCK_MONOTONIC in ns: the clock of the measuring window (bench_protocol.h).
int64_t MonotonicNs();

// SleepUntilNs()
//
// Sleeps until MonotonicNs() >= `t`.
void SleepUntilNs(int64_t t);

}  // namespace pyfleet::bench
