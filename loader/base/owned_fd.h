// File: owned_fd.h
//
// OwnedFd: a file descriptor with one owner, closed when the owner goes. Movable, not
// copyable: a descriptor that two objects think they own gets closed twice.
//
//   OwnedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
//   if (!fd.valid()) return PosixError(errno, absl::StrCat("open ", path));
//   ::pread(fd.get(), buf, n, 0);
//   int raw = fd.release();   // the caller now closes `raw`
#pragma once

#include <unistd.h>

#include <utility>

namespace pyfleet::internal {

class OwnedFd {
 public:
  // Takes ownership of `fd` (-1 means none).
  explicit OwnedFd(int fd = -1) noexcept : fd_(fd) {}
  OwnedFd(OwnedFd&& other) noexcept : fd_(other.release()) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }

  // OwnedFd::release()
  //
  // Gives up ownership without closing; returns the descriptor (-1 if none).
  int release() noexcept { return std::exchange(fd_, -1); }

  // OwnedFd::reset()
  //
  // Closes the held descriptor, if any, and takes ownership of `fd`.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

}  // namespace pyfleet::internal
