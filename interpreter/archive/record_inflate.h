// File: record_inflate.h
//
// Inflates one raw-deflate ZIP record into a private buffer of exactly its declared
// size, with zlib and no shared state (so any number of threads may inflate records
// of one archive at once).
//
//   absl::StatusOr<std::shared_ptr<AlignedBuffer>> out =
//       InflateRecord(compressed, compressed_size, declared_size);
//
// A stream that would produce more than `declared_size` bytes (a ZIP bomb or a lying
// header) or fewer is rejected; nothing beyond `declared_size` is ever allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace pyfleet::internal {

// A 64-byte aligned heap buffer (tensor storages may be created over it).
class AlignedBuffer {
 public:
  // Returns nullptr if the allocation fails.
  static std::shared_ptr<AlignedBuffer> Allocate(size_t size);
  ~AlignedBuffer();
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  AlignedBuffer(uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t* data_;  // owned (free())
  size_t size_;
};

// The largest ratio deflate can reach (258-byte matches coded in ~2 bits): a declared
// size beyond compressed_size * kMaxDeflateRatio + 1024 is a lie.
inline constexpr uint64_t kMaxDeflateRatio = 1032;

// Inflates the raw deflate stream in [input, input + input_size) into a new buffer of
// `declared_size` bytes. Errors (DataLoss): corrupt stream ("decompression failed or
// archive is corrupted"), a stream that ends early or runs past `declared_size`
// ("declared size lies"). ResourceExhausted if the buffer cannot be allocated.
absl::StatusOr<std::shared_ptr<AlignedBuffer>> InflateRecord(const uint8_t* input,
                                                            size_t input_size,
                                                            size_t declared_size);

}  // namespace pyfleet::internal
