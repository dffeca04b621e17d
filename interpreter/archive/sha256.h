// File: sha256.h
//
// SHA-256 of a package file, for integrity pinning (Note [Pinned packages] in
// package_archive.h). The hashing is OpenSSL's (libcrypto, Debian libssl-dev: SHA-NI or
// AVX2 code, ~1.5 GB/s on one core here); this file only feeds it the file's bytes.
//
//   absl::StatusOr<std::string> want = ParseSha256Hex(user_text);     // normalised
//   absl::StatusOr<std::string> have = FileSha256Hex(fd, size);       // pread, no mmap
//   if (want.ok() && have.ok() && *want != *have) return Mismatch(...);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pyfleet::internal {

// FileSha256Hex()
//
// SHA-256 of bytes [0, size) of the open file `fd`, as 64 lowercase hex digits. Reads
// with pread() through a 4 MiB buffer: it neither maps nor faults in a mapping of the
// file (no RSS growth, no page-table cost), it only reads the page cache, and it never
// moves the descriptor's offset (thread-safe on a shared fd). DataLoss if the file ends
// before `size`; the errno of a failed read otherwise. `what` names the file in errors.
absl::StatusOr<std::string> FileSha256Hex(int fd, uint64_t size, std::string_view what);

// Sha256Hex()
//
// SHA-256 of `size` bytes in memory, as 64 lowercase hex digits.
std::string Sha256Hex(const void* data, size_t size);

// ParseSha256Hex()
//
// `text` as a normalised digest: exactly 64 hex digits (either case; surrounding
// whitespace is ignored), returned lowercase. InvalidArgument otherwise, naming what is
// wrong ("a SHA-256 is 64 hex digits, got 63 characters").
absl::StatusOr<std::string> ParseSha256Hex(std::string_view text);

}  // namespace pyfleet::internal
