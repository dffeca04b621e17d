// File: pickle_globals.cpp
//
// See pickle_globals.h. The opcode table follows CPython's Lib/pickletools.py: each
// opcode has an argument format and a stack effect. Stack values are only "a string we
// know", "a mark" or "something else".
#include "runtime/tools/pickle_globals.h"

#include <cstdint>
#include <cstring>
#include <optional>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pyfleet::internal {
namespace {

struct Value {
  enum Kind : uint8_t { kOther, kString, kMark } kind = kOther;
  std::string text;  // kString only
};

class Walker {
 public:
  explicit Walker(std::string_view data) : data_(data) {}

  absl::StatusOr<std::vector<std::string>> run() {
    while (true) {
      if (pos_ >= data_.size()) return error("pickle ends without STOP");
      op_pos_ = pos_;
      const uint8_t op = static_cast<uint8_t>(data_[pos_++]);
      absl::Status s = step(op);
      if (s.code() == absl::StatusCode::kCancelled) break;  // STOP
      if (!s.ok()) return s;
    }
    return std::vector<std::string>(modules_.begin(), modules_.end());
  }

 private:
  absl::Status error(std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("pickle offset ", op_pos_, ": ", std::string(what)));
  }

  // Argument readers. Each fails with a clear error instead of reading past the end.
  absl::StatusOr<std::string_view> take(uint64_t n) {
    if (n > data_.size() - pos_) return error("argument runs past the end");
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  absl::StatusOr<uint64_t> uint(int bytes) {
    absl::StatusOr<std::string_view> b = take(bytes);
    if (!b.ok()) return b.status();
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>((*b)[i]);
    return v;
  }
  absl::StatusOr<std::string_view> line() {
    size_t nl = data_.find('\n', pos_);
    if (nl == std::string_view::npos) return error("unterminated line argument");
    std::string_view v = data_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return v;
  }
  absl::StatusOr<std::string_view> sized(int len_bytes) {
    absl::StatusOr<uint64_t> n = uint(len_bytes);
    if (!n.ok()) return n.status();
    return take(*n);
  }

  // Stack helpers.
  absl::StatusOr<Value> pop() {
    if (stack_.empty()) return error("stack underflow");
    Value v = std::move(stack_.back());
    stack_.pop_back();
    if (v.kind == Value::kMark) return error("unexpected MARK on the stack");
    return v;
  }
  absl::Status popN(int n) {
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<Value> v = pop();
      if (!v.ok()) return v.status();
    }
    return absl::OkStatus();
  }
  absl::Status popMark() {
    while (true) {
      if (stack_.empty()) return error("no MARK to pop to");
      const bool mark = stack_.back().kind == Value::kMark;
      stack_.pop_back();
      if (mark) return absl::OkStatus();
    }
  }
  void push(Value v = {}) { stack_.push_back(std::move(v)); }
  void pushString(std::string_view s) { push(Value{Value::kString, std::string(s)}); }
  absl::Status memoPut(uint64_t index) {
    if (stack_.empty()) return error("memo store from an empty stack");
    memo_[index] = stack_.back();
    return absl::OkStatus();
  }
  absl::Status memoGet(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) return error(absl::StrCat("memo key ", index, " not found"));
    push(it->second);
    return absl::OkStatus();
  }
  void addGlobal(std::string_view module) { modules_.insert(std::string(module)); }

  absl::Status globalPair() {  // GLOBAL / INST: "module\nname\n"
    absl::StatusOr<std::string_view> module = line();
    if (!module.ok()) return module.status();
    absl::StatusOr<std::string_view> name = line();
    if (!name.ok()) return name.status();
    addGlobal(*module);
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> decimalLine() {
    absl::StatusOr<std::string_view> l = line();
    if (!l.ok()) return l.status();
    uint64_t v = 0;
    if (l->empty()) return error("empty decimal argument");
    for (char c : *l) {
      if (c < '0' || c > '9') return error("bad decimal argument");
      v = v * 10 + (c - '0');
    }
    return v;
  }

#define PYFLEET_TRY(expr)                        \
  do {                                           \
    absl::Status _s = (expr);                    \
    if (!_s.ok()) return _s;                     \
  } while (0)
#define PYFLEET_TRY_ARG(var, expr)               \
  auto var = (expr);                             \
  if (!var.ok()) return var.status()

  absl::Status step(uint8_t op) {
    switch (op) {
      // --- no argument, stack only ---------------------------------------------------
      case '.': return absl::CancelledError();  // STOP
      case '(': push(Value{Value::kMark, {}}); return absl::OkStatus();  // MARK
      case '0': return popN(1);                  // POP
      case '1': return popMark();                // POP_MARK
      case '2':                                  // DUP
        if (stack_.empty()) return error("stack underflow");
        push(stack_.back());
        return absl::OkStatus();
      case 'N': case 0x88: case 0x89:            // NONE NEWTRUE NEWFALSE
      case '}': case ']': case ')': case 0x8f:   // EMPTY_DICT/LIST/TUPLE/SET
        push(); return absl::OkStatus();
      case 'Q': case 0x98:                       // BINPERSID READONLY_BUFFER
        PYFLEET_TRY(popN(1)); push(); return absl::OkStatus();
      case 0x97: push(); return absl::OkStatus();  // NEXT_BUFFER
      case 'R': case 0x81:                       // REDUCE NEWOBJ
        PYFLEET_TRY(popN(2)); push(); return absl::OkStatus();
      case 0x92:                                 // NEWOBJ_EX
        PYFLEET_TRY(popN(3)); push(); return absl::OkStatus();
      case 'a': case 'b': return popN(1);        // APPEND BUILD
      case 's': return popN(2);                  // SETITEM
      case 'e': case 'u': case 0x90:             // APPENDS SETITEMS ADDITEMS
        return popMark();
      case 't': case 'l': case 'd': case 0x91:   // TUPLE LIST DICT FROZENSET
        PYFLEET_TRY(popMark()); push(); return absl::OkStatus();
      case 'o':                                  // OBJ
        PYFLEET_TRY(popMark()); push(); return absl::OkStatus();
      case 0x85: PYFLEET_TRY(popN(1)); push(); return absl::OkStatus();  // TUPLE1
      case 0x86: PYFLEET_TRY(popN(2)); push(); return absl::OkStatus();  // TUPLE2
      case 0x87: PYFLEET_TRY(popN(3)); push(); return absl::OkStatus();  // TUPLE3
      case 0x93: {                               // STACK_GLOBAL
        PYFLEET_TRY_ARG(name, pop());
        PYFLEET_TRY_ARG(module, pop());
        if (module->kind != Value::kString || name->kind != Value::kString) {
          return error("STACK_GLOBAL operands are not strings");
        }
        addGlobal(module->text);
        push();
        return absl::OkStatus();
      }
      case 0x94: return memoPut(memo_.size());   // MEMOIZE
      // --- globals ------------------------------------------------------------------
      case 'c': PYFLEET_TRY(globalPair()); push(); return absl::OkStatus();  // GLOBAL
      case 'i':                                  // INST
        PYFLEET_TRY(globalPair()); PYFLEET_TRY(popMark()); push(); return absl::OkStatus();
      // --- memo ---------------------------------------------------------------------
      case 'p': { PYFLEET_TRY_ARG(i, decimalLine()); return memoPut(*i); }   // PUT
      case 'q': { PYFLEET_TRY_ARG(i, uint(1)); return memoPut(*i); }        // BINPUT
      case 'r': { PYFLEET_TRY_ARG(i, uint(4)); return memoPut(*i); }        // LONG_BINPUT
      case 'g': { PYFLEET_TRY_ARG(i, decimalLine()); return memoGet(*i); }  // GET
      case 'h': { PYFLEET_TRY_ARG(i, uint(1)); return memoGet(*i); }        // BINGET
      case 'j': { PYFLEET_TRY_ARG(i, uint(4)); return memoGet(*i); }        // LONG_BINGET
      // --- strings we keep (STACK_GLOBAL operands) ----------------------------------
      case 'V': { PYFLEET_TRY_ARG(s, line()); pushString(*s); return absl::OkStatus(); }  // UNICODE
      case 'X': { PYFLEET_TRY_ARG(s, sized(4)); pushString(*s); return absl::OkStatus(); }  // BINUNICODE
      case 0x8c: { PYFLEET_TRY_ARG(s, sized(1)); pushString(*s); return absl::OkStatus(); }  // SHORT_BINUNICODE
      case 0x8d: { PYFLEET_TRY_ARG(s, sized(8)); pushString(*s); return absl::OkStatus(); }  // BINUNICODE8
      // --- other constants ----------------------------------------------------------
      case 'F': case 'I': case 'L': case 'S': case 'P':  // FLOAT INT LONG STRING PERSID
        { PYFLEET_TRY_ARG(s, line()); push(); return absl::OkStatus(); }
      case 'J': { PYFLEET_TRY_ARG(v, take(4)); push(); return absl::OkStatus(); }  // BININT
      case 'K': { PYFLEET_TRY_ARG(v, take(1)); push(); return absl::OkStatus(); }  // BININT1
      case 'M': { PYFLEET_TRY_ARG(v, take(2)); push(); return absl::OkStatus(); }  // BININT2
      case 'G': { PYFLEET_TRY_ARG(v, take(8)); push(); return absl::OkStatus(); }  // BINFLOAT
      case 'T': case 'B':                       // BINSTRING BINBYTES
        { PYFLEET_TRY_ARG(v, sized(4)); push(); return absl::OkStatus(); }
      case 'U': case 'C': case 0x8a:            // SHORT_BINSTRING SHORT_BINBYTES LONG1
        { PYFLEET_TRY_ARG(v, sized(1)); push(); return absl::OkStatus(); }
      case 0x8b: { PYFLEET_TRY_ARG(v, sized(4)); push(); return absl::OkStatus(); }  // LONG4
      case 0x8e: case 0x96:                     // BINBYTES8 BYTEARRAY8
        { PYFLEET_TRY_ARG(v, sized(8)); push(); return absl::OkStatus(); }
      case 0x82: { PYFLEET_TRY_ARG(v, take(1)); push(); return absl::OkStatus(); }  // EXT1
      case 0x83: { PYFLEET_TRY_ARG(v, take(2)); push(); return absl::OkStatus(); }  // EXT2
      case 0x84: { PYFLEET_TRY_ARG(v, take(4)); push(); return absl::OkStatus(); }  // EXT4
      // --- framing ------------------------------------------------------------------
      case 0x80: { PYFLEET_TRY_ARG(v, take(1)); return absl::OkStatus(); }  // PROTO
      case 0x95: { PYFLEET_TRY_ARG(v, take(8)); return absl::OkStatus(); }  // FRAME
      default:
        return error(absl::StrCat("unknown opcode 0x", absl::Hex(op)));
    }
  }
#undef PYFLEET_TRY
#undef PYFLEET_TRY_ARG

  std::string_view data_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<Value> stack_;
  absl::flat_hash_map<uint64_t, Value> memo_;
  std::set<std::string> modules_;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> PickleGlobalModules(std::string_view pickle) {
  return Walker(pickle).run();
}

}  // namespace pyfleet::internal
