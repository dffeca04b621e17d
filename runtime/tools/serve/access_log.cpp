// File: access_log.cpp — see access_log.h.
#include "runtime/tools/serve/access_log.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pyfleet/error.h"
#include "runtime/tools/serve/json_codec.h"

namespace pyfleet::serve {
namespace {

// "2024-05-01T10:00:00.123Z" (UTC, milliseconds).
std::string NowUtc() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const int64_t millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &tm);
  return absl::StrFormat("%s.%03dZ", buffer, millis);
}

}  // namespace

AccessLog::AccessLog(const std::string& destination) : file_(stdout), owned_(false) {
  if (destination != "-") {
    file_ = std::fopen(destination.c_str(), "a");
    if (file_ == nullptr) {
      const int error = errno;
      throw Error(absl::Status(absl::ErrnoToStatusCode(error),
                               absl::StrCat("--access-log: cannot open ", destination, ": ", std::strerror(error))));
    }
    owned_ = true;
  }
}

AccessLog::~AccessLog() {
  flush();
  if (owned_) std::fclose(file_);
}

void AccessLog::write(const Entry& e) {
  std::string line = absl::StrCat("{\"time\":\"", NowUtc(), "\",\"protocol\":\"", e.protocol, "\",\"method\":",
                                  JsonString(e.method));
  if (!e.path.empty()) absl::StrAppend(&line, ",\"path\":", JsonString(e.path));
  if (!e.model.empty()) absl::StrAppend(&line, ",\"model\":", JsonString(e.model));
  absl::StrAppend(&line, ",\"status\":", e.status, ",\"code\":\"", e.code, "\",\"duration_ms\":",
                  absl::StrFormat("%.3f", e.seconds * 1e3), ",\"bytes_in\":", e.bytes_in, ",\"bytes_out\":", e.bytes_out);
  if (!e.remote.empty()) absl::StrAppend(&line, ",\"remote\":", JsonString(e.remote));
  if (!e.id.empty()) absl::StrAppend(&line, ",\"id\":", JsonString(e.id));
  if (!e.error.empty()) absl::StrAppend(&line, ",\"error\":", JsonString(e.error));
  line += "}\n";
  absl::MutexLock lock(&mu_);
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

void AccessLog::flush() {
  absl::MutexLock lock(&mu_);
  std::fflush(file_);
}

}  // namespace pyfleet::serve
