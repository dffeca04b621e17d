// File: sha256.cpp — see sha256.h.
#include "interpreter/archive/sha256.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "loader/base/posix_error.h"

namespace pyfleet::internal {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string ToHex(const unsigned char* digest, unsigned int n) {
  std::string out(size_t{n} * 2, '0');
  for (unsigned int i = 0; i < n; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

// An EVP context set up for SHA-256, freed by the caller with EVP_MD_CTX_free; null if
// OpenSSL cannot allocate one.
EVP_MD_CTX* NewSha256Context() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

}  // namespace

absl::StatusOr<std::string> FileSha256Hex(int fd, uint64_t size, std::string_view what_sv) {
  const absl::string_view what(what_sv.data(), what_sv.size());
  EVP_MD_CTX* ctx = NewSha256Context();
  if (ctx == nullptr) return absl::ResourceExhaustedError("SHA-256: OpenSSL cannot make a digest context");
  absl::Cleanup free_ctx = [ctx] { EVP_MD_CTX_free(ctx); };
  // 4 MiB: large enough that the read syscalls cost nothing next to the hashing, small
  // enough to stay in L2/L3 between pread's copy and the hash.
  constexpr size_t kChunk = size_t{4} << 20;
  std::unique_ptr<unsigned char[]> buf(new unsigned char[std::min<uint64_t>(kChunk, std::max<uint64_t>(size, 1))]);
  uint64_t offset = 0;
  while (offset < size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, size - offset));
    ssize_t n = ::pread(fd, buf.get(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, absl::StrCat("SHA-256 of ", what, ": pread"));
    if (n == 0) {
      return absl::DataLossError(absl::StrCat("SHA-256 of ", what, ": the file ends at byte ", offset,
                                              " of ", size, " (truncated while open?)"));
    }
    if (EVP_DigestUpdate(ctx, buf.get(), static_cast<size_t>(n)) != 1) {
      return absl::InternalError(absl::StrCat("SHA-256 of ", what, ": EVP_DigestUpdate failed"));
    }
    offset += static_cast<uint64_t>(n);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, digest, &len) != 1) {
    return absl::InternalError(absl::StrCat("SHA-256 of ", what, ": EVP_DigestFinal_ex failed"));
  }
  return ToHex(digest, len);
}

std::string Sha256Hex(const void* data, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest only fails when OpenSSL cannot allocate; there is no sane digest to give.
  if (EVP_Digest(data, size, digest, &len, EVP_sha256(), nullptr) != 1) return std::string();
  return ToHex(digest, len);
}

absl::StatusOr<std::string> ParseSha256Hex(std::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size()));
  if (t.size() != 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("a SHA-256 is 64 hex digits, got ", t.size(), " characters"));
  }
  std::string out(t);
  for (char& c : out) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("a SHA-256 is 64 hex digits, got '", t, "' (not hex)"));
    }
    c = absl::ascii_tolower(static_cast<unsigned char>(c));
  }
  return out;
}

}  // namespace pyfleet::internal
