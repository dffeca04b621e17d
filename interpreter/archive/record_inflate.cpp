// File: record_inflate.cpp — see record_inflate.h.
#include "interpreter/archive/record_inflate.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pyfleet::internal {

std::shared_ptr<AlignedBuffer> AlignedBuffer::Allocate(size_t size) {
  // aligned_alloc needs a size that is a multiple of the alignment.
  size_t rounded = (std::max<size_t>(size, 1) + 63) & ~size_t{63};
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) return nullptr;
  return std::shared_ptr<AlignedBuffer>(new AlignedBuffer(static_cast<uint8_t*>(p), size));
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

absl::StatusOr<std::shared_ptr<AlignedBuffer>> InflateRecord(const uint8_t* input,
                                                            size_t input_size,
                                                            size_t declared_size) {
  std::shared_ptr<AlignedBuffer> out = AlignedBuffer::Allocate(declared_size);
  if (out == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", declared_size, " bytes to inflate a record"));
  }
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
    return absl::InternalError("inflateInit2 failed");
  }
  absl::Cleanup ender = [&zs] { inflateEnd(&zs); };
  constexpr size_t kChunk = std::numeric_limits<uInt>::max();
  size_t in_left = input_size;
  size_t out_left = declared_size;
  zs.next_in = const_cast<Bytef*>(input);
  zs.next_out = out->data();
  int rc = Z_OK;
  while (true) {
    if (zs.avail_in == 0 && in_left > 0) {
      zs.avail_in = static_cast<uInt>(std::min(in_left, kChunk));
      in_left -= zs.avail_in;
    }
    if (zs.avail_out == 0 && out_left > 0) {
      zs.avail_out = static_cast<uInt>(std::min(out_left, kChunk));
      out_left -= zs.avail_out;
    }
    if (zs.avail_out == 0) break;  // buffer full: check below that the stream ends here
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0) break;  // input exhausted
    if (rc != Z_OK) {
      return absl::DataLossError("decompression failed or archive is corrupted");
    }
  }
  if (rc != Z_STREAM_END) {
    // The buffer is full (or the input ran out); one more byte tells which lie it is.
    uint8_t probe;
    zs.next_out = &probe;
    zs.avail_out = 1;
    if (zs.avail_in == 0 && in_left > 0) {
      zs.avail_in = static_cast<uInt>(std::min(in_left, kChunk));
      in_left -= zs.avail_in;
    }
    rc = inflate(&zs, Z_NO_FLUSH);
    if (zs.avail_out == 0) {
      return absl::DataLossError(absl::StrCat(
          "declared size lies: data inflates to more than the declared ", declared_size,
          " bytes"));
    }
    if (rc != Z_STREAM_END) {
      return absl::DataLossError(
          rc == Z_DATA_ERROR ? "decompression failed or archive is corrupted"
                             : "decompression failed: deflate stream is truncated");
    }
  }
  if (zs.total_out != declared_size) {
    return absl::DataLossError(absl::StrCat("declared size lies: data inflates to ",
                                            zs.total_out, " bytes, ", declared_size,
                                            " declared"));
  }
  return out;
}

}  // namespace pyfleet::internal
