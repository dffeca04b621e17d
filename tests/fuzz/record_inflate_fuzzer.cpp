// File: record_inflate_fuzzer.cpp
//
// libFuzzer target: InflateRecord (interpreter/archive/record_inflate.h) on arbitrary
// raw-deflate streams. Input: a 4-byte little-endian declared size (reduced to at most
// 256 KiB: enough for every lie, cheap enough to run fast), then the stream. Oracle: zlib inflating the same stream on its own. A stream
// that ends (Z_STREAM_END) after exactly the declared size must inflate to the very same
// bytes; anything else (corrupt, truncated, longer or shorter) must be a DataLoss error.
//
//   scripts/fuzz record_inflate_fuzzer 60
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "interpreter/archive/record_inflate.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

constexpr size_t kMaxDeclared = size_t{256} << 10;

// zlib's own verdict: the stream's output if it ends cleanly within `limit` bytes (the
// output is cut at limit + 1 so that "longer than declared" is visible).
bool ReferenceInflate(const uint8_t* in, size_t in_size, size_t limit, std::string* out) {
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) abort();
  out->assign(limit + 1, '\0');
  zs.next_in = const_cast<Bytef*>(in);
  zs.avail_in = static_cast<uInt>(in_size);
  zs.next_out = reinterpret_cast<Bytef*>(out->data());
  zs.avail_out = static_cast<uInt>(out->size());
  int rc = Z_OK;
  while (rc == Z_OK) rc = inflate(&zs, Z_NO_FLUSH);
  out->resize(zs.total_out);
  inflateEnd(&zs);
  return rc == Z_STREAM_END;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t declared32;
  std::memcpy(&declared32, data, 4);
  const size_t declared = declared32 % (kMaxDeclared + 1);
  const uint8_t* stream = data + 4;
  const size_t stream_size = size - 4;

  absl::StatusOr<std::shared_ptr<pyfleet::internal::AlignedBuffer>> out =
      pyfleet::internal::InflateRecord(stream, stream_size, declared);
  std::string expected;
  const bool ends = ReferenceInflate(stream, stream_size, declared, &expected);
  const bool should_succeed = ends && expected.size() == declared;
  if (!out.ok()) {
    PYFLEET_FUZZ_EXPECT_CODE(out.status(), "InflateRecord", absl::StatusCode::kDataLoss);
    PYFLEET_FUZZ_CHECK(!should_succeed,
                       absl::StrCat("a stream that inflates to exactly the declared ", declared,
                                    " bytes was rejected: ", out.status().ToString()));
    return 0;
  }
  PYFLEET_FUZZ_CHECK(should_succeed,
                     absl::StrCat("accepted a stream that zlib ", ends ? "inflates to " : "cannot finish after ",
                                  expected.size(), " bytes, declared ", declared));
  PYFLEET_FUZZ_CHECK((*out)->size() == declared, "buffer size");
  PYFLEET_FUZZ_CHECK(reinterpret_cast<uintptr_t>((*out)->data()) % 64 == 0, "64-byte alignment");
  PYFLEET_FUZZ_CHECK(declared == 0 || std::memcmp((*out)->data(), expected.data(), declared) == 0,
                     "inflated bytes differ from zlib's");
  return 0;
}
