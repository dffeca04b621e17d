// Tests of the interpreter library's C ABI (pyfleet/interpreter_abi.h, version 2) on a
// pool of 2 interpreters, driven through the raw table: status codes, nested values,
// call_value, has_attr, interrupt, register_module, the tensor handoff between
// interpreters, and a create that fails after CPython started.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pyfleet/interpreter.h"
#include "tests/interpreter/abi_test_util.h"

namespace pyfleet {
namespace {

using ::testing::HasSubstr;
using testing::AbiStatus;
using testing::Eval;
using testing::IntValue;
using testing::Raw;
using testing::RawObj;
using testing::ResultValue;
using testing::SeqValue;
using testing::StringOf;
using testing::StringValue;
using testing::TensorOf;
using testing::TensorValue;

// Two interpreters for the whole binary (STYLE.md §7.6); they live until exit.
class AbiPool : public ::testing::Environment {
 public:
  void SetUp() override {
    libraries = NativeLibraries::create();
    for (int i = 0; i < 2; ++i) {
      interpreters.push_back(Interpreter::create(libraries));
      interpreters.back()->run("import torch\n");
    }
  }
  void TearDown() override {
    for (auto& interp : interpreters) interp.release();  // ARCHITECTURE.md §11
  }
  static inline std::shared_ptr<NativeLibraries> libraries;
  static inline std::vector<std::unique_ptr<Interpreter>> interpreters;
};

Raw R(int i) { return Raw::of(*AbiPool::interpreters.at(i)); }

AbiStatus CallValue(Raw raw, const RawObj& fn, std::vector<PyfleetValue> args, PyfleetValue* out,
                    std::vector<PyfleetKwarg> kwargs = {}) {
  return AbiStatus(raw.abi, raw.abi->call_value(raw.interp, fn.get(), args.data(), args.size(), kwargs.data(),
                                                kwargs.size(), out));
}

std::string Repr(Raw raw, PyfleetObj* obj) {
  char* text = nullptr;
  AbiStatus s(raw.abi, raw.abi->repr(raw.interp, obj, &text));
  EXPECT_TRUE(s.ok()) << s;
  std::string out = text != nullptr ? text : "";
  std::free(text);
  return out;
}

TEST(InterpreterAbiTest, TableIsVersionTwoAndComplete) {
  const PyfleetInterpreterAbi* abi = R(0).abi;
  EXPECT_EQ(abi->abi_version, 2u);
  EXPECT_EQ(abi->struct_size, sizeof(PyfleetInterpreterAbi));
  EXPECT_NE(abi->call_value, nullptr);
  EXPECT_NE(abi->has_attr, nullptr);
  EXPECT_NE(abi->interrupt, nullptr);
  EXPECT_NE(abi->clear_interrupt, nullptr);
  // Function pointers of the header are noexcept in C++ (PYFLEET_NOEXCEPT).
  static_assert(noexcept(abi->status_free(nullptr)));
  static_assert(std::is_nothrow_invocable_v<decltype(PyfleetArchive::read), void*, size_t, PyfleetRecordView*>);
  static_assert(std::is_nothrow_invocable_v<decltype(PyfleetExtensionLoader::load), void*, const char*, char**>);
}

// Item 4 of issue 7: every absl code has a PyfleetCode, and these exceptions map to it.
TEST(InterpreterAbiTest, ExceptionTypesMapToTheMostSpecificCode) {
  struct Case {
    const char* code;
    int expected;
    const char* python_type;
  } cases[] = {
      {"raise TimeoutError('slow')", PYFLEET_DEADLINE_EXCEEDED, "builtins.TimeoutError"},
      {"raise PermissionError('no')", PYFLEET_PERMISSION_DENIED, "builtins.PermissionError"},
      {"raise MemoryError()", PYFLEET_RESOURCE_EXHAUSTED, "builtins.MemoryError"},
      {"def f():\n    f()\nf()", PYFLEET_RESOURCE_EXHAUSTED, "builtins.RecursionError"},
      {"raise KeyboardInterrupt()", PYFLEET_CANCELLED, "builtins.KeyboardInterrupt"},
      {"raise FileNotFoundError('gone')", PYFLEET_NOT_FOUND, "builtins.FileNotFoundError"},
      {"import no_such_module_pyfleet_abi", PYFLEET_NOT_FOUND, "builtins.ModuleNotFoundError"},
      {"[][1]", PYFLEET_OUT_OF_RANGE, "builtins.IndexError"},
      {"int('x')", PYFLEET_INVALID_ARGUMENT, "builtins.ValueError"},
      {"raise NotImplementedError()", PYFLEET_UNIMPLEMENTED, "builtins.NotImplementedError"},
      {"1/0", PYFLEET_UNKNOWN, "builtins.ZeroDivisionError"},
  };
  for (const Case& c : cases) {
    AbiStatus s = R(0).run(c.code);
    EXPECT_EQ(s.code(), c.expected) << c.code << ": " << s;
    EXPECT_EQ(s.pythonType(), c.python_type) << c.code;
  }
  EXPECT_TRUE(R(0).run("x = 1").ok());
}

TEST(InterpreterAbiTest, ToValueConvertsNestedContainers) {
  Raw raw = R(1);
  ASSERT_TRUE(raw.run("import collections, numpy, torch\n"
                      "Point = collections.namedtuple('Point', 'x y')\n"
                      "nested = {'a': [1, 2.5, 'x', b'y', None, True],\n"
                      "          't': (torch.ones(2), torch.Size([3, 4])),\n"
                      "          'p': Point(1, 2),\n"
                      "          'od': collections.OrderedDict([(7, 'seven')]),\n"
                      "          'np': numpy.int64(-5),\n"
                      "          'e': []}\n")
                  .ok());
  RawObj nested = Eval(raw, "nested");
  ResultValue v(raw);
  AbiStatus s(raw.abi, raw.abi->to_value(raw.interp, nested.get(), v.out()));
  ASSERT_TRUE(s.ok()) << s;
  const PyfleetValue& d = v.get();
  ASSERT_EQ(d.kind, PYFLEET_VALUE_DICT);
  ASSERT_EQ(d.u.seq.size, 6u);
  const PyfleetValue* e = d.u.seq.items;  // key, value, ... in insertion order
  EXPECT_EQ(StringOf(e[0]), "a");
  ASSERT_EQ(e[1].kind, PYFLEET_VALUE_LIST);
  ASSERT_EQ(e[1].u.seq.size, 6u);
  const PyfleetValue* a = e[1].u.seq.items;
  EXPECT_EQ(a[0].kind, PYFLEET_VALUE_INT);
  EXPECT_EQ(a[0].u.i, 1);
  EXPECT_EQ(a[1].kind, PYFLEET_VALUE_DOUBLE);
  EXPECT_EQ(a[1].u.d, 2.5);
  EXPECT_EQ(a[2].kind, PYFLEET_VALUE_STRING);
  EXPECT_EQ(StringOf(a[2]), "x");
  EXPECT_EQ(a[3].kind, PYFLEET_VALUE_BYTES);
  EXPECT_EQ(StringOf(a[3]), "y");
  EXPECT_EQ(a[4].kind, PYFLEET_VALUE_NONE);
  EXPECT_EQ(a[5].kind, PYFLEET_VALUE_BOOL);
  EXPECT_EQ(a[5].u.i, 1);
  EXPECT_EQ(StringOf(e[2]), "t");
  ASSERT_EQ(e[3].kind, PYFLEET_VALUE_TUPLE);
  ASSERT_EQ(e[3].u.seq.size, 2u);
  EXPECT_EQ(e[3].u.seq.items[0].kind, PYFLEET_VALUE_TENSOR);
  EXPECT_TRUE(at::equal(TensorOf(e[3].u.seq.items[0]), at::ones({2})));
  const PyfleetValue& size = e[3].u.seq.items[1];  // torch.Size is a tuple
  ASSERT_EQ(size.kind, PYFLEET_VALUE_TUPLE);
  ASSERT_EQ(size.u.seq.size, 2u);
  EXPECT_EQ(size.u.seq.items[1].u.i, 4);
  ASSERT_EQ(e[5].kind, PYFLEET_VALUE_TUPLE);  // namedtuple
  EXPECT_EQ(e[5].u.seq.items[1].u.i, 2);
  ASSERT_EQ(e[7].kind, PYFLEET_VALUE_DICT);  // OrderedDict
  ASSERT_EQ(e[7].u.seq.size, 1u);
  EXPECT_EQ(e[7].u.seq.items[0].u.i, 7);
  EXPECT_EQ(StringOf(e[7].u.seq.items[1]), "seven");
  EXPECT_EQ(e[9].kind, PYFLEET_VALUE_INT);  // numpy.int64 through __index__
  EXPECT_EQ(e[9].u.i, -5);
  EXPECT_EQ(e[11].kind, PYFLEET_VALUE_LIST);
  EXPECT_EQ(e[11].u.seq.size, 0u);
  EXPECT_EQ(e[11].u.seq.items, nullptr);
}

TEST(InterpreterAbiTest, CallValueTakesNestedArgumentsAndConvertsTheResult) {
  Raw raw = R(0);
  ASSERT_TRUE(raw.run("def combine(items, *, scale):\n"
                      "    return {'sum': sum(items['xs']) * scale, 'pair': (items['name'], len(items['xs']))}\n")
                  .ok());
  RawObj combine = Eval(raw, "combine");
  std::string xs = "xs", name_key = "name", name = "abc", sum = "sum";
  std::vector<PyfleetValue> list = {IntValue(1), IntValue(2), IntValue(3)};
  std::vector<PyfleetValue> dict = {StringValue(xs), SeqValue(PYFLEET_VALUE_LIST, list), StringValue(name_key),
                                    StringValue(name)};
  PyfleetKwarg scale{"scale", IntValue(10)};
  ResultValue v(raw);
  AbiStatus s = CallValue(raw, combine, {SeqValue(PYFLEET_VALUE_DICT, dict)}, v.out(), {scale});
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(v.get().kind, PYFLEET_VALUE_DICT);
  ASSERT_EQ(v.get().u.seq.size, 2u);
  const PyfleetValue* e = v.get().u.seq.items;
  EXPECT_EQ(StringOf(e[0]), "sum");
  EXPECT_EQ(e[1].u.i, 60);
  ASSERT_EQ(e[3].kind, PYFLEET_VALUE_TUPLE);
  EXPECT_EQ(StringOf(e[3].u.seq.items[0]), "abc");
  EXPECT_EQ(e[3].u.seq.items[1].u.i, 3);
}

TEST(InterpreterAbiTest, CallValueNamesWhereAnUnsupportedObjectSitsAndDropsTheResult) {
  Raw raw = R(0);
  ASSERT_TRUE(raw.run("import gc, weakref\n"
                      "class Foo:\n"
                      "    pass\n"
                      "foo_refs = []\n"
                      "def make():\n"
                      "    foo = Foo()\n"
                      "    foo_refs.append(weakref.ref(foo))\n"
                      "    return [1, {'aux': foo}]\n"
                      "def bad_key():\n"
                      "    return {'ok': 1, Foo(): 2}\n")
                  .ok());
  ResultValue v(raw);
  AbiStatus s = CallValue(raw, Eval(raw, "make"), {}, v.out());
  EXPECT_EQ(s.code(), PYFLEET_INVALID_ARGUMENT);
  EXPECT_THAT(s.message(), HasSubstr("cannot convert a Python object of type 'Foo' at result[1]['aux'] to a value"));
  EXPECT_THAT(s.message(), HasSubstr("(supported: None, bool, int, float, str, bytes, torch.Tensor, list, tuple, dict)"));
  EXPECT_EQ(v.get().kind, PYFLEET_VALUE_NONE);
  ASSERT_TRUE(raw.run("gc.collect()\nassert foo_refs[-1]() is None, 'result kept alive'\n").ok());

  AbiStatus k = CallValue(raw, Eval(raw, "bad_key"), {}, v.out());
  EXPECT_EQ(k.code(), PYFLEET_INVALID_ARGUMENT);
  EXPECT_THAT(k.message(), HasSubstr("type 'Foo' at result.keys()[1]"));

  RawObj obj = Eval(raw, "object()");
  AbiStatus t(raw.abi, raw.abi->to_value(raw.interp, obj.get(), v.out()));
  EXPECT_EQ(t.code(), PYFLEET_INVALID_ARGUMENT);
  EXPECT_THAT(t.message(), HasSubstr("type 'object' at value to a value"));
}

TEST(InterpreterAbiTest, NestingIsLimitedToOneHundredLevels) {
  Raw raw = R(1);
  ASSERT_TRUE(raw.run("def nest(n):\n"
                      "    v = 0\n"
                      "    for _ in range(n):\n"
                      "        v = [v]\n"
                      "    return v\n"
                      "loop = []\n"
                      "loop.append(loop)\n")
                  .ok());
  RawObj nest = Eval(raw, "nest");
  {
    ResultValue v(raw);
    AbiStatus s = CallValue(raw, nest, {IntValue(PYFLEET_VALUE_MAX_DEPTH)}, v.out());
    EXPECT_TRUE(s.ok()) << s;
  }
  ResultValue v(raw);
  AbiStatus s = CallValue(raw, nest, {IntValue(PYFLEET_VALUE_MAX_DEPTH + 1)}, v.out());
  EXPECT_EQ(s.code(), PYFLEET_INVALID_ARGUMENT);
  EXPECT_THAT(s.message(), HasSubstr("nested more than 100 levels deep, at result[0][0]"));
  RawObj loop = Eval(raw, "loop");
  AbiStatus l(raw.abi, raw.abi->to_value(raw.interp, loop.get(), v.out()));
  EXPECT_EQ(l.code(), PYFLEET_INVALID_ARGUMENT);
  EXPECT_THAT(l.message(), HasSubstr("nested more than 100 levels deep"));
  EXPECT_EQ(v.get().kind, PYFLEET_VALUE_NONE);

  // The other way: host values with the innermost item at depth 100 (accepted) and 101.
  for (int depth : {PYFLEET_VALUE_MAX_DEPTH, PYFLEET_VALUE_MAX_DEPTH + 1}) {
    std::vector<std::vector<PyfleetValue>> levels(depth);
    levels[0] = {IntValue(1)};
    for (size_t i = 1; i < levels.size(); ++i) levels[i] = {SeqValue(PYFLEET_VALUE_LIST, levels[i - 1])};
    PyfleetValue deep = SeqValue(PYFLEET_VALUE_LIST, levels.back());
    PyfleetObj* out = nullptr;
    AbiStatus f(raw.abi, raw.abi->from_value(raw.interp, &deep, &out));
    RawObj made(raw, out);
    if (depth == PYFLEET_VALUE_MAX_DEPTH) {
      EXPECT_TRUE(f.ok()) << f;
    } else {
      EXPECT_EQ(f.code(), PYFLEET_INVALID_ARGUMENT);
      EXPECT_THAT(f.message(), HasSubstr("nested more than 100 levels deep"));
    }
  }
}

TEST(InterpreterAbiTest, IntOutsideInt64IsOutOfRange) {
  Raw raw = R(0);
  ResultValue v(raw);
  AbiStatus s(raw.abi, raw.abi->to_value(raw.interp, Eval(raw, "[1, 2**70]").get(), v.out()));
  EXPECT_EQ(s.code(), PYFLEET_OUT_OF_RANGE);
  EXPECT_THAT(s.message(), HasSubstr("the int at value[1] does not fit"));
}

TEST(InterpreterAbiTest, FromValueAndGetItemBuildNestedObjects) {
  Raw raw = R(0);
  std::string k = "k", text = "s";
  std::vector<PyfleetValue> tuple = {StringValue(text), testing::NoneValue()};
  std::vector<PyfleetValue> list = {IntValue(1), SeqValue(PYFLEET_VALUE_TUPLE, tuple)};
  std::vector<PyfleetValue> dict = {StringValue(k), SeqValue(PYFLEET_VALUE_LIST, list)};
  PyfleetValue value = SeqValue(PYFLEET_VALUE_DICT, dict);
  PyfleetObj* out = nullptr;
  AbiStatus s(raw.abi, raw.abi->from_value(raw.interp, &value, &out));
  ASSERT_TRUE(s.ok()) << s;
  RawObj obj(raw, out);
  EXPECT_EQ(Repr(raw, obj.get()), "{'k': [1, ('s', None)]}");

  RawObj table = Eval(raw, "{(1, 's'): 'found'}");
  std::vector<PyfleetValue> key_items = {IntValue(1), StringValue(text)};
  PyfleetValue key = SeqValue(PYFLEET_VALUE_TUPLE, key_items);
  PyfleetObj* item = nullptr;
  AbiStatus g(raw.abi, raw.abi->get_item(raw.interp, table.get(), &key, &item));
  ASSERT_TRUE(g.ok()) << g;
  RawObj found(raw, item);
  EXPECT_EQ(Repr(raw, found.get()), "'found'");
}

TEST(InterpreterAbiTest, HasAttrIsPythonsHasattr) {
  Raw raw = R(1);
  ASSERT_TRUE(raw.run("has_attr_marker = 1\n"
                      "class Odd:\n"
                      "    @property\n"
                      "    def broken(self):\n"
                      "        raise ValueError('not like this')\n"
                      "    @property\n"
                      "    def missing(self):\n"
                      "        raise AttributeError('no')\n"
                      "odd = Odd()\n")
                  .ok());
  int32_t found = -1;
  AbiStatus a(raw.abi, raw.abi->has_attr(raw.interp, nullptr, "has_attr_marker", &found));  // __main__
  ASSERT_TRUE(a.ok()) << a;
  EXPECT_EQ(found, 1);
  AbiStatus b(raw.abi, raw.abi->has_attr(raw.interp, nullptr, "no_such_marker", &found));
  ASSERT_TRUE(b.ok()) << b;
  EXPECT_EQ(found, 0);
  RawObj odd = Eval(raw, "odd");
  AbiStatus c(raw.abi, raw.abi->has_attr(raw.interp, odd.get(), "missing", &found));
  ASSERT_TRUE(c.ok()) << c;
  EXPECT_EQ(found, 0);
  AbiStatus d(raw.abi, raw.abi->has_attr(raw.interp, odd.get(), "broken", &found));
  EXPECT_EQ(d.code(), PYFLEET_INVALID_ARGUMENT);
  EXPECT_EQ(d.pythonType(), "builtins.ValueError");
}

// Interrupts `thread_id` until it is found (the thread may not have entered Python yet);
// false after 10 s.
bool InterruptUntilFound(Raw raw, uint64_t thread_id) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < give_up) {
    int32_t found = -1;
    AbiStatus s(raw.abi, raw.abi->interrupt(raw.interp, thread_id, &found));
    EXPECT_TRUE(s.ok()) << s;
    if (found > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

TEST(InterpreterAbiTest, InterruptStopsAPurePythonLoop) {
  Raw raw = R(0);
  ASSERT_TRUE(raw.run("def spin():\n"
                      "    while True:\n"
                      "        pass\n"
                      "def spin_and_catch():\n"
                      "    try:\n"
                      "        while True:\n"
                      "            pass\n"
                      "    except TimeoutError as e:\n"
                      "        return type(e).__module__ + '.' + type(e).__name__ + ': ' + str(e)\n")
                  .ok());
  RawObj spin = Eval(raw, "spin");
  std::atomic<uint64_t> thread_id{0};
  std::string message, python_type;
  int code = -1;
  int64_t after = -1;
  std::thread caller([&] {
    thread_id = static_cast<uint64_t>(pthread_self());
    ResultValue v(raw);
    AbiStatus s = CallValue(raw, spin, {}, v.out());
    code = s.code();
    message = s.message();
    python_type = s.pythonType();
    // The same thread is served normally afterwards.
    ResultValue w(raw);
    AbiStatus t = CallValue(raw, Eval(raw, "lambda: sum(range(100000))"), {}, w.out());
    after = t.ok() ? w.get().u.i : -1;
    raw.abi->detach_thread(raw.interp);
  });
  while (thread_id.load() == 0) std::this_thread::yield();
  EXPECT_TRUE(InterruptUntilFound(raw, thread_id.load()));
  caller.join();
  EXPECT_EQ(code, PYFLEET_DEADLINE_EXCEEDED);
  EXPECT_EQ(python_type, "builtins.TimeoutError");
  EXPECT_EQ(message, "pyfleet: call deadline exceeded");
  EXPECT_EQ(after, int64_t{4999950000});

  // Python code that catches it sees a plain TimeoutError with pyfleet's message.
  std::atomic<uint64_t> catcher_id{0};
  std::string caught;
  std::thread catcher([&] {
    catcher_id = static_cast<uint64_t>(pthread_self());
    ResultValue v(raw);
    AbiStatus s = CallValue(raw, Eval(raw, "spin_and_catch"), {}, v.out());
    if (s.ok() && v.get().kind == PYFLEET_VALUE_STRING) caught = StringOf(v.get());
    raw.abi->detach_thread(raw.interp);
  });
  while (catcher_id.load() == 0) std::this_thread::yield();
  EXPECT_TRUE(InterruptUntilFound(raw, catcher_id.load()));
  catcher.join();
  EXPECT_EQ(caught, "builtins.TimeoutError: pyfleet: call deadline exceeded");
}

TEST(InterpreterAbiTest, InterruptOfAThreadOutsideACallLeavesNothingPending) {
  Raw raw = R(1);
  RawObj work = Eval(raw, "lambda: sum(i for i in range(20000))");
  std::atomic<int> phase{0};
  std::atomic<uint64_t> thread_id{0};
  int second = -1;
  std::thread idle([&] {
    thread_id = static_cast<uint64_t>(pthread_self());
    ResultValue v(raw);
    EXPECT_TRUE(CallValue(raw, work, {}, v.out()).ok());  // has a thread state now, then idles
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();
    ResultValue w(raw);
    AbiStatus s = CallValue(raw, work, {}, w.out());
    second = s.ok() ? 0 : s.code();
    raw.abi->detach_thread(raw.interp);
  });
  while (phase.load() != 1) std::this_thread::yield();
  int32_t found = -1;
  AbiStatus s(raw.abi, raw.abi->interrupt(raw.interp, thread_id.load(), &found));
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(found, 0);
  AbiStatus u(raw.abi, raw.abi->interrupt(raw.interp, 12345, &found));  // no such thread
  EXPECT_TRUE(u.ok()) << u;
  EXPECT_EQ(found, 0);
  raw.abi->clear_interrupt(raw.interp, thread_id.load());  // nothing to clear: a no-op
  phase = 2;
  idle.join();
  EXPECT_EQ(second, 0);
}

TEST(InterpreterAbiTest, RegisterModuleAddsAnImportableModuleToARunningInterpreter) {
  Interpreter& interp = *AbiPool::interpreters.at(0);
  Raw raw = R(0);
  Obj register_module = interp.global("_pyfleet_bootstrap", "register_module");
  RawObj fn(raw, raw.abi->obj_retain(raw.interp, internal::Access::handle(register_module)));
  std::string name = "pyfleet_late_pkg", source = "ANSWER = 41\n";
  std::string sub = "pyfleet_late_pkg.sub", sub_source = "from pyfleet_late_pkg import ANSWER\nNEXT = ANSWER + 1\n";
  EXPECT_FALSE(raw.run("import pyfleet_late_pkg\n").ok());  // not yet
  PyfleetValue is_package{};
  is_package.kind = PYFLEET_VALUE_BOOL;
  is_package.u.i = 1;
  ResultValue v(raw);
  AbiStatus a = CallValue(raw, fn, {StringValue(name), StringValue(source), is_package}, v.out());
  ASSERT_TRUE(a.ok()) << a;
  is_package.u.i = 0;
  AbiStatus b = CallValue(raw, fn, {StringValue(sub), StringValue(sub_source), is_package}, v.out());
  ASSERT_TRUE(b.ok()) << b;
  ASSERT_TRUE(raw.run("import pyfleet_late_pkg.sub\nlate_next = pyfleet_late_pkg.sub.NEXT\n").ok());
  EXPECT_EQ(interp.eval("late_next").toInt(), 42);
  // Only this interpreter got it.
  EXPECT_EQ(R(1).run("import pyfleet_late_pkg\n").code(), PYFLEET_NOT_FOUND);
}

// Item 5 of issue 7: a tensor interpreter 0 wrapped first reaches interpreter 1 as an
// alias: same storage, results correct, no error.
TEST(InterpreterAbiTest, TensorTaggedByAnotherInterpreterIsHandedOverAsAnAlias) {
  at::Tensor t = at::arange(6, at::kFloat);
  RawObj identity0 = Eval(R(0), "lambda t: t");
  RawObj identity1 = Eval(R(1), "lambda t: t");
  RawObj scale1 = Eval(R(1), "lambda t: (t * 2, t.add_(1))");
  {
    ResultValue v(R(0));
    ASSERT_TRUE(CallValue(R(0), identity0, {TensorValue(t)}, v.out()).ok());
    EXPECT_EQ(TensorOf(v.get()).unsafeGetTensorImpl(), t.unsafeGetTensorImpl());  // tagged by 0 now
  }
  for (int repeat = 0; repeat < 3; ++repeat) {
    ResultValue v(R(1));
    AbiStatus s = CallValue(R(1), identity1, {TensorValue(t)}, v.out());
    ASSERT_TRUE(s.ok()) << s;
    at::Tensor back = TensorOf(v.get());
    EXPECT_NE(back.unsafeGetTensorImpl(), t.unsafeGetTensorImpl());  // an alias...
    EXPECT_EQ(back.data_ptr(), t.data_ptr());                         // ...of the same storage
  }
  ResultValue v(R(1));
  AbiStatus s = CallValue(R(1), scale1, {TensorValue(t)}, v.out());
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(v.get().kind, PYFLEET_VALUE_TUPLE);
  EXPECT_TRUE(at::equal(TensorOf(v.get().u.seq.items[0]), at::arange(6, at::kFloat) * 2));
  EXPECT_TRUE(at::equal(t, at::arange(6, at::kFloat) + 1));  // the in-place add reached the host
}

// Two interpreters wrapping the same new tensor at the same time: one tags it, the other
// gets an alias (the race the up-front tag check cannot see).
TEST(InterpreterAbiTest, ConcurrentFirstWrapsOfOneTensorBothSucceed) {
  RawObj identity[2] = {Eval(R(0), "lambda t: t"), Eval(R(1), "lambda t: t")};
  std::atomic<int> failures{0};
  for (int round = 0; round < 200; ++round) {
    at::Tensor t = at::ones({4});
    std::atomic<int> ready{0};
    std::thread threads[2];
    for (int i = 0; i < 2; ++i) {
      threads[i] = std::thread([&, i] {
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        ResultValue v(R(i));
        AbiStatus s = CallValue(R(i), identity[i], {TensorValue(t)}, v.out());
        if (!s.ok() || TensorOf(v.get()).data_ptr() != t.data_ptr()) failures.fetch_add(1);
        R(i).abi->detach_thread(R(i).interp);
      });
    }
    for (auto& th : threads) th.join();
  }
  EXPECT_EQ(failures.load(), 0);
}

// /proc/self/maps paths of interpreter library copies.
std::set<std::string> InterpreterCopies() {
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> out;
  std::string line;
  while (std::getline(maps, line)) {
    const size_t at = line.find('/');
    const size_t end = line.find("-interpreter.so");
    if (at != std::string::npos && end != std::string::npos) out.insert(line.substr(at, end + 15 - at));
  }
  return out;
}

void* RefuseExtensions(void*, const char*, char** error) noexcept {
  *error = strdup("not in this test");
  return nullptr;
}

// Item 1 of issue 7: create fails in the bootstrap (after CPython started: a module
// source that is not UTF-8); the copy stays consistent and refuses a second create with
// a message naming the interpreter it failed to start.
TEST(InterpreterAbiTest, CreateThatFailsAfterCPythonStartedLeavesTheCopyRefusingCleanly) {
  const std::set<std::string> before = InterpreterCopies();
  InterpreterConfig config;
  config.modules = {{"pyfleet_not_utf8", "X = '\xff'\n", false}};
  int failed_code = -1;
  try {
    Interpreter::create(AbiPool::libraries, config);
  } catch (const Error& e) {
    failed_code = static_cast<int>(e.status().code());
    EXPECT_EQ(e.pythonType(), "builtins.UnicodeDecodeError");
  }
  EXPECT_EQ(failed_code, PYFLEET_INVALID_ARGUMENT);
  std::string copy;
  for (const std::string& path : InterpreterCopies()) {
    if (before.count(path) == 0) copy = path;
  }
  ASSERT_FALSE(copy.empty()) << "the failed interpreter's library copy is not mapped";
  const int index = std::stoi(copy.substr(copy.rfind("/i") + 2, 8));
  void* handle = ::dlopen(copy.c_str(), RTLD_NOW | RTLD_NOLOAD);  // matched by name
  ASSERT_NE(handle, nullptr) << dlerror();
  auto abi_fn = reinterpret_cast<PyfleetInterpreterAbiFn>(::dlsym(handle, PYFLEET_INTERPRETER_ABI_SYMBOL));
  ASSERT_NE(abi_fn, nullptr);
  const PyfleetInterpreterAbi* abi = abi_fn();

  // Freed memory reads back as 0xa5 bytes from here on (glibc M_PERTURB), so a
  // PyfleetInterp the failed create had freed would show as a garbage index.
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer's allocator ignores M_PERTURB; it reports any read of freed memory
  // by itself (scripts/test-sanitizers).
  (void)mallopt(M_PERTURB, 0xa5);
#else
  ASSERT_EQ(mallopt(M_PERTURB, 0xa5), 1);
#endif
  std::vector<char*> churn;  // reuse freed chunks of that size, as a later start-up would
  for (int i = 0; i < 64; ++i) churn.push_back(static_cast<char*>(std::malloc(128)));
  for (char* p : churn) std::free(p);
  PyfleetInterpConfig again{};
  again.struct_size = sizeof(PyfleetInterpConfig);
  again.index = index;
  again.extension_loader = PyfleetExtensionLoader{nullptr, &RefuseExtensions};
  PyfleetInterp* interp = nullptr;
  AbiStatus s(abi, abi->create(&again, &interp));
  mallopt(M_PERTURB, 0);
  EXPECT_EQ(s.code(), PYFLEET_FAILED_PRECONDITION);
  EXPECT_THAT(s.message(), HasSubstr("this library copy failed to start interpreter " + std::to_string(index)));
  EXPECT_THAT(s.message(), HasSubstr("can't decode byte 0xff"));  // why it failed the first time
  EXPECT_EQ(interp, nullptr);
  ::dlclose(handle);  // drops the NOLOAD reference only

  // The pool is unaffected.
  EXPECT_TRUE(R(0).run("assert 1 + 1 == 2\n").ok());
}

}  // namespace
}  // namespace pyfleet

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  testing::AddGlobalTestEnvironment(new pyfleet::AbiPool());
  return RUN_ALL_TESTS();
}
