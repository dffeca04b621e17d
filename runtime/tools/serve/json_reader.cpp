// File: json_reader.cpp — see json_reader.h.
#include "runtime/tools/serve/json_reader.h"

#include "absl/strings/str_cat.h"

namespace pyfleet::serve {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

void JsonReader::fail(absl::string_view what) {
  if (!status_.ok()) return;
  status_ = absl::InvalidArgumentError(absl::StrCat("malformed JSON at byte ", pos_, ": ", what));
}

void JsonReader::skipWhitespace() {
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    ++pos_;
  }
}

char JsonReader::peek() {
  if (!ok()) return '\0';
  skipWhitespace();
  return pos_ < text_.size() ? text_[pos_] : '\0';
}

bool JsonReader::expect(char c) {
  if (peek() != c || pos_ >= text_.size()) {
    fail(pos_ >= text_.size() ? absl::StrCat("the text ends where '", std::string(1, c), "' is expected")
                              : absl::StrCat("expected '", std::string(1, c), "'"));
    return false;
  }
  ++pos_;
  if (c == '{' || c == '[') after_open_ = true;
  return true;
}

bool JsonReader::expectEnd() {
  if (peek() != '\0' || pos_ < text_.size()) {
    fail("unexpected text after the value");
    return false;
  }
  return ok();
}

bool JsonReader::nextMember(std::string& key) {
  const char c = peek();
  if (!ok()) return false;
  if (c == '}') {
    ++pos_;
    after_open_ = false;
    return false;
  }
  if (!after_open_ && !expect(',')) return false;
  after_open_ = false;
  if (peek() != '"') {
    fail("expected a member name (a string)");
    return false;
  }
  return readString(key) && expect(':');
}

bool JsonReader::nextElement() {
  const char c = peek();
  if (!ok()) return false;
  if (c == ']') {
    ++pos_;
    after_open_ = false;
    return false;
  }
  if (!after_open_ && !expect(',')) return false;
  after_open_ = false;
  return true;
}

bool JsonReader::readString(std::string& out) {
  out.clear();
  if (!expect('"')) return false;
  while (pos_ < text_.size()) {
    const char c = text_[pos_++];
    if (c == '"') return true;
    if (static_cast<unsigned char>(c) < 0x20) {
      --pos_;
      fail("a control character in a string");
      return false;
    }
    if (c != '\\') {
      out += c;
      continue;
    }
    if (pos_ >= text_.size()) break;
    const char e = text_[pos_++];
    switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        auto hex4 = [&](uint32_t& v) {
          if (pos_ + 4 > text_.size()) return false;
          v = 0;
          for (int i = 0; i < 4; ++i) {
            const int h = HexValue(text_[pos_ + i]);
            if (h < 0) return false;
            v = v * 16 + static_cast<uint32_t>(h);
          }
          pos_ += 4;
          return true;
        };
        uint32_t cp = 0;
        if (!hex4(cp)) {
          fail("a bad \\u escape");
          return false;
        }
        if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
          uint32_t low = 0;
          if (pos_ + 2 > text_.size() || text_[pos_] != '\\' || text_[pos_ + 1] != 'u' || (pos_ += 2, !hex4(low)) ||
              low < 0xDC00 || low > 0xDFFF) {
            fail("a lone surrogate in a \\u escape");
            return false;
          }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          fail("a lone surrogate in a \\u escape");
          return false;
        }
        AppendUtf8(out, cp);
        break;
      }
      default:
        --pos_;
        fail("a bad escape in a string");
        return false;
    }
  }
  fail("an unterminated string");
  return false;
}

bool JsonReader::readNumber(absl::string_view& token) {
  peek();
  if (!ok()) return false;
  const size_t start = pos_;
  auto digits = [&] {
    const size_t from = pos_;
    while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    return pos_ > from;
  };
  if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
  if (pos_ < text_.size() && text_[pos_] == '0') {
    ++pos_;
  } else if (!digits()) {
    pos_ = start;
    fail("expected a number");
    return false;
  }
  if (pos_ < text_.size() && text_[pos_] == '.') {
    ++pos_;
    if (!digits()) {
      fail("a number with no digits after '.'");
      return false;
    }
  }
  if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
    ++pos_;
    if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
    if (!digits()) {
      fail("a number with no digits in its exponent");
      return false;
    }
  }
  token = text_.substr(start, pos_ - start);
  return true;
}

bool JsonReader::readLiteral(absl::string_view literal) {
  if (text_.substr(pos_, literal.size()) != literal) {
    fail("expected a value");
    return false;
  }
  pos_ += literal.size();
  return true;
}

bool JsonReader::readBool(bool& out) {
  const char c = peek();
  if (c == 't' && readLiteral("true")) {
    out = true;
    return true;
  }
  if (c == 'f' && readLiteral("false")) {
    out = false;
    return true;
  }
  fail("expected true or false");
  return false;
}

absl::string_view JsonReader::skipValue() {
  peek();
  const size_t start = pos_;
  if (!skipValueAt(0)) return {};
  return text_.substr(start, pos_ - start);
}

bool JsonReader::skipValueAt(int depth) {
  if (depth > kMaxDepth) {
    fail(absl::StrCat("nested deeper than ", kMaxDepth, " levels"));
    return false;
  }
  std::string scratch;
  absl::string_view token;
  switch (peek()) {
    case '{':
      expect('{');
      while (nextMember(scratch)) {
        if (!skipValueAt(depth + 1)) return false;
      }
      return ok();
    case '[':
      expect('[');
      while (nextElement()) {
        if (!skipValueAt(depth + 1)) return false;
      }
      return ok();
    case '"':
      return readString(scratch);
    case 't':
      return readLiteral("true");
    case 'f':
      return readLiteral("false");
    case 'n':
      return readLiteral("null");
    case '\0':
      fail("the text ends where a value is expected");
      return false;
    default:
      return readNumber(token);
  }
}

}  // namespace pyfleet::serve
