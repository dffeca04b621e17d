// File: bench_process.cpp — see bench_process.h.
#include "benchmarks/bench/bench_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

extern char** environ;

namespace pyfleet::bench {
namespace {

std::string ErrnoText(const char* what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

// An unlinked temporary file for a child's stderr.
int AnonymousFile() {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  int fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string path = dir + "/pyfleet-bench-XXXXXX";
  fd = mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(ErrnoText("pyfleet-bench: temporary file"));
  unlink(path.c_str());
  return fd;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")");
  return absl::StrCat("wait status ", status);
}

}  // namespace

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void SleepUntilNs(int64_t t) {
  timespec ts{static_cast<time_t>(t / 1000000000), static_cast<long>(t % 1000000000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

WorkerProcess::WorkerProcess(std::vector<std::string> argv, const std::vector<std::string>& extra_env)
    : description_(absl::StrJoin(argv, " ")) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error(ErrnoText("pyfleet-bench: pipe"));
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    throw std::runtime_error(ErrnoText("pyfleet-bench: pipe"));
  }
  stderr_fd_ = AnonymousFile();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, stderr_fd_, 2);
  // extra_env first: getenv() returns the first entry of a name.
  std::vector<char*> envp;
  for (const std::string& e : extra_env) envp.push_back(const_cast<char*>(e.c_str()));
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
  if (rc != 0) {
    pid_ = -1;
    errno = rc;
    throw std::runtime_error(ErrnoText(absl::StrCat("pyfleet-bench: cannot start ", argv[0]).c_str()));
  }
}

WorkerProcess::~WorkerProcess() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
  }
  for (int fd : {stdin_fd_, stdout_fd_, stderr_fd_}) {
    if (fd >= 0) close(fd);
  }
}

std::string WorkerProcess::stderrTail() const {
  constexpr off_t kTail = 4000;
  const off_t size = lseek(stderr_fd_, 0, SEEK_END);
  if (size <= 0) return "";
  const off_t from = size > kTail ? size - kTail : 0;
  std::string text(static_cast<size_t>(size - from), '\0');
  const ssize_t n = pread(stderr_fd_, text.data(), text.size(), from);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return (from > 0 ? "...\n" : "") + text;
}

void WorkerProcess::fail(const std::string& what) {
  std::string status = "still running";
  if (!reaped_) {
    // Give a process that is exiting a moment, so its status and stderr are complete.
    for (int i = 0; i < 50 && !reaped_; ++i) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        reaped_ = true;
      } else {
        usleep(20000);
      }
    }
  }
  if (reaped_) status = DescribeStatus(status_);
  std::string tail = stderrTail();
  throw std::runtime_error(absl::StrCat(what, " (", status, ")\n  command: ", description_,
                                        tail.empty() ? "" : "\n  its stderr:\n", tail));
}

std::string WorkerProcess::readLine(absl::Duration timeout, const std::string& expected) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      if (line != expected && !absl::StartsWith(line, expected + " ")) {
        fail(absl::StrCat("expected \"", expected, " ...\" from the worker, got \"", line.substr(0, 200), "\""));
      }
      return line;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) fail(absl::StrCat("no \"", expected, "\" from the worker within ", absl::FormatDuration(timeout)));
    pollfd p{stdout_fd_, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000)));
    if (ready < 0 && errno != EINTR) fail(ErrnoText("poll"));
    if (ready <= 0) continue;
    char chunk[1 << 16];
    const ssize_t n = read(stdout_fd_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(absl::StrCat("the worker ended before it said \"", expected, "\""));
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

void WorkerProcess::writeLine(const std::string& line) {
  const std::string data = line + "\n";
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(stdin_fd_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(ErrnoText("writing to the worker"));
    done += static_cast<size_t>(n);
  }
}

void WorkerProcess::wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!reaped_) {
    const pid_t r = waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      break;
    }
    if (r < 0 && errno != EINTR) fail(ErrnoText("waitpid"));
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      fail(absl::StrCat("the worker did not exit within ", absl::FormatDuration(timeout), " of its result; killed"));
    }
    usleep(5000);
  }
  if (!WIFEXITED(status_) || WEXITSTATUS(status_) != 0) fail("the worker failed");
}

std::optional<ProcessMemory> ReadMemory(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/smaps_rollup");
  std::ifstream in(path);
  if (!in) return std::nullopt;
  ProcessMemory m;
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "Rss:")) m.rss_kb = std::atol(line.c_str() + 4);
    if (absl::StartsWith(line, "Pss:")) m.pss_kb = std::atol(line.c_str() + 4);
  }
  return m;
}

double CpuSeconds(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/stat");
  std::ifstream in(path);
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) throw std::runtime_error(absl::StrCat("pyfleet-bench: cannot read ", path));
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace pyfleet::bench
