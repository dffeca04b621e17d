// File: json_reader.h
//
// JsonReader: a small pull parser over JSON text (RFC 8259), for the one document
// pyfleet-serve reads a lot of: an inference request, whose tensor data is most of its
// bytes. It reads values in place: strings unescaped into a std::string, numbers as
// their token (converted by the caller with std::from_chars), and any value can be
// skipped (its text span kept, to be read later). There is no tree: a 1x3x224x224 FP32
// request (3 MB of text) parses in ~8 ms instead of ~100 ms through nlohmann::json's DOM
// (measured here), which is most of what a ResNet-18 request costs besides the model.
//
//   JsonReader r(R"({"a": [1, 2.5], "b": "x"})");
//   r.expect('{');
//   std::string key;
//   while (r.nextMember(key)) {            // reads '"a":' (and the ',' between members)
//     if (key == "a") { absl::string_view span = r.skipValue(); ... } else r.skipValue();
//   }
//   if (!r.ok()) return r.status();        // "malformed JSON at byte 12: ..."
//
// Errors are sticky: after the first one every call fails fast and status() keeps the
// first message. Nesting deeper than kMaxDepth is an error (no unbounded recursion).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pyfleet::serve {

class JsonReader {
 public:
  static constexpr int kMaxDepth = 64;

  explicit JsonReader(absl::string_view text) : text_(text) {}

  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }
  // The byte offset of the next unread character.
  size_t offset() const { return pos_; }

  // Fails with `what` at the current offset (INVALID_ARGUMENT), unless failed already.
  void fail(absl::string_view what);

  // The first character of the next value, after whitespace ('\0' at the end).
  char peek();
  // Consumes `c` (after whitespace) or fails.
  bool expect(char c);
  // Consumes the end of the text (whitespace only) or fails.
  bool expectEnd();

  // JsonReader::nextMember()
  //
  // Inside an object (after '{'): reads the next `"key":` into `key` and returns true, or
  // reads the closing '}' and returns false (also false on an error).
  bool nextMember(std::string& key);
  // JsonReader::nextElement()
  //
  // Inside an array (after '['): true if another element follows (its ',' consumed),
  // false after reading the closing ']' (also false on an error).
  bool nextElement();

  // Reads a string value into `out` (escapes resolved, UTF-8).
  bool readString(std::string& out);
  // Reads a number value's token ("-12.5e3"), checked against JSON's grammar.
  bool readNumber(absl::string_view& token);
  // Reads true or false.
  bool readBool(bool& out);
  // Skips one value of any kind; returns its text span (empty on an error).
  absl::string_view skipValue();

 private:
  void skipWhitespace();
  bool skipValueAt(int depth);
  bool readLiteral(absl::string_view literal);

  absl::string_view text_;
  size_t pos_ = 0;
  bool after_open_ = false;  // the container just opened: no ',' before its first item
  absl::Status status_;
};

}  // namespace pyfleet::serve
