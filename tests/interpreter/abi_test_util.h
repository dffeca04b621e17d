// File: abi_test_util.h
//
// Helpers for tests that drive an interpreter through its raw C ABI
// (pyfleet/interpreter_abi.h) rather than the host API: the table and handle of an
// Interpreter, owning wrappers for statuses, objects and result values, and builders for
// borrowed argument values.
//
//   testing::Raw raw = testing::Raw::of(*interp);
//   testing::AbiStatus s = raw.run("x = 1\n");
//   ASSERT_TRUE(s.ok()) << s;
//   testing::ResultValue v(raw);
//   s = raw.callValue(fn.get(), {testing::IntValue(2)}, v.out());
#pragma once

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "pyfleet/interpreter.h"
#include "pyfleet/interpreter_abi.h"
#include "runtime/src/access.h"
#include "runtime/src/interpreter_core.h"

namespace pyfleet::testing {

// A status returned by an entry, freed with the table's status_free.
class AbiStatus {
 public:
  AbiStatus(const PyfleetInterpreterAbi* abi, PyfleetStatus* status)
      : status_(status, [abi](PyfleetStatus* s) { abi->status_free(s); }) {}
  bool ok() const { return status_ == nullptr; }
  int code() const { return status_ ? status_->code : PYFLEET_OK; }
  std::string message() const { return status_ && status_->message ? status_->message : ""; }
  std::string pythonType() const { return status_ && status_->python_type ? status_->python_type : ""; }
  std::string traceback() const { return status_ && status_->traceback ? status_->traceback : ""; }
  friend std::ostream& operator<<(std::ostream& os, const AbiStatus& s) {
    return s.ok() ? os << "OK" : os << "code " << s.code() << ": " << s.message() << " [" << s.pythonType() << "]";
  }

 private:
  std::shared_ptr<PyfleetStatus> status_;
};

// The ABI table and handle of one interpreter, with the entries tests use most.
struct Raw {
  const PyfleetInterpreterAbi* abi = nullptr;
  PyfleetInterp* interp = nullptr;

  static Raw of(const Interpreter& interpreter) {
    const auto& core = internal::Access::core(interpreter);
    return Raw{core->abi(), core->interp()};
  }

  AbiStatus run(const std::string& code) const { return AbiStatus(abi, abi->run(interp, code.c_str(), "<test>")); }
};

// A strong reference to an object of one interpreter, released on destruction.
class RawObj {
 public:
  RawObj() = default;
  RawObj(Raw raw, PyfleetObj* obj) : raw_(raw), obj_(obj, [raw](PyfleetObj* o) { raw.abi->obj_release(raw.interp, o); }) {}
  PyfleetObj* get() const { return obj_.get(); }

 private:
  Raw raw_;
  std::shared_ptr<PyfleetObj> obj_;
};

// eval(expression) in __main__; fails the test on error.
inline RawObj Eval(Raw raw, const std::string& expression) {
  PyfleetObj* out = nullptr;
  AbiStatus s(raw.abi, raw.abi->eval(raw.interp, expression.c_str(), &out));
  EXPECT_TRUE(s.ok()) << expression << ": " << s;
  return RawObj(raw, out);
}

// A result value owned by the test, cleared with value_clear.
class ResultValue {
 public:
  explicit ResultValue(Raw raw) : raw_(raw) {}
  ~ResultValue() { raw_.abi->value_clear(raw_.interp, &value_); }
  ResultValue(const ResultValue&) = delete;
  ResultValue& operator=(const ResultValue&) = delete;
  PyfleetValue* out() { return &value_; }
  const PyfleetValue& get() const { return value_; }

 private:
  Raw raw_;
  PyfleetValue value_{};
};

// Borrowed argument values (the strings they point to must outlive the call).
inline PyfleetValue NoneValue() { return PyfleetValue{}; }
inline PyfleetValue IntValue(int64_t i) {
  PyfleetValue v{};
  v.kind = PYFLEET_VALUE_INT;
  v.u.i = i;
  return v;
}
inline PyfleetValue StringValue(const std::string& s) {
  PyfleetValue v{};
  v.kind = PYFLEET_VALUE_STRING;
  v.u.str.data = s.data();
  v.u.str.size = s.size();
  return v;
}
inline PyfleetValue TensorValue(const at::Tensor& t) {
  PyfleetValue v{};
  v.kind = PYFLEET_VALUE_TENSOR;
  v.u.tensor = t.unsafeGetTensorImpl();
  return v;
}
// LIST, TUPLE or DICT over `items` (for DICT: key, value, key, value...).
inline PyfleetValue SeqValue(int32_t kind, std::vector<PyfleetValue>& items) {
  PyfleetValue v{};
  v.kind = kind;
  v.u.seq.items = items.data();
  v.u.seq.size = kind == PYFLEET_VALUE_DICT ? items.size() / 2 : items.size();
  return v;
}

// A result TENSOR value as an at::Tensor sharing the reference (the value keeps its own).
inline at::Tensor TensorOf(const PyfleetValue& v) {
  using Ptr = c10::intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  return at::Tensor(Ptr::reclaim_copy(static_cast<c10::TensorImpl*>(v.u.tensor)));
}

inline std::string StringOf(const PyfleetValue& v) { return std::string(v.u.str.data, v.u.str.size); }

}  // namespace pyfleet::testing
