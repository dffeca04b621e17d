// Finalizing an interpreter while other host threads are calling it, and what the C ABI
// does afterwards (see Note [Finalize waits for calls in flight] in
// interpreter/src/errors.h). Its own binary: it finalizes interpreters, and a failure
// before the fix killed threads or the process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <atomic>
#include <chrono>
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

// Every caller thread comes back (with results, then FAILED_PRECONDITION); none is
// ended inside CPython by Py_FinalizeEx, and the process stays usable.
TEST(InterpreterFinalizeTest, DestroyWaitsForCallsInFlightAndRefusesNewOnes) {
  auto libs = NativeLibraries::create();
  constexpr int kThreads = 4;
  for (int round = 0; round < 5; ++round) {
    auto interp = Interpreter::create(libs);
    // Modules to tear down make Py_FinalizeEx long enough for waiting threads to get the
    // GIL in the middle of it (where CPython 3.11 ends them) if finalize let them in.
    interp->run("import asyncio, decimal, email.message, json, unittest\n"
                "def work(k):\n    return sum(i * i for i in range(k))\n");
    const Raw raw = Raw::of(*interp);
    RawObj work = Eval(raw, "work");
    std::atomic<int> returned{0}, refused{0}, unexpected{0};
    std::atomic<int64_t> calls{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (;;) {
          ResultValue v(raw);
          std::vector<PyfleetValue> args = {IntValue(200)};
          AbiStatus c(raw.abi, raw.abi->call_value(raw.interp, work.get(), args.data(), 1, nullptr, 0, v.out()));
          PyfleetObj* again = raw.abi->obj_retain(raw.interp, work.get());
          raw.abi->obj_release(raw.interp, again);
          if (c.ok()) {
            if (v.get().kind != PYFLEET_VALUE_INT || v.get().u.i != 2646700) unexpected.fetch_add(1);
            calls.fetch_add(1);
            continue;
          }
          if (c.code() == PYFLEET_FAILED_PRECONDITION && c.message().find("finalized") != std::string::npos) {
            refused.fetch_add(1);
          } else {
            unexpected.fetch_add(1);
            ADD_FAILURE() << c;
          }
          break;
        }
        raw.abi->detach_thread(raw.interp);  // a no-op after finalize
        returned.fetch_add(1);
      });
    }
    while (calls.load() < 50) std::this_thread::yield();
    interp.reset();  // ~Interpreter: finalize while the threads keep calling
    for (auto& t : threads) t.join();
    EXPECT_EQ(returned.load(), kThreads) << "a caller thread vanished inside CPython";
    EXPECT_EQ(refused.load(), kThreads);
    EXPECT_EQ(unexpected.load(), 0);
  }
  auto next = Interpreter::create(libs);
  next->run("import torch\nx = torch.ones(3).sum().item()\n");
  EXPECT_EQ(next->eval("x").toDouble(), 3.0);
  next.release();  // interpreters normally live until exit (ARCHITECTURE.md §11)
}

// A host callback that Python code runs (here through ctypes) must not finalize its own
// interpreter: finalize would wait for the very call it runs in.
std::atomic<const PyfleetInterpreterAbi*> g_abi{nullptr};
std::atomic<PyfleetInterp*> g_interp{nullptr};
std::atomic<int> g_finalize_code{-1};

extern "C" int FinalizeFromInsideACall() {
  PyfleetStatus* s = g_abi.load()->finalize(g_interp.load());
  g_finalize_code = s != nullptr ? s->code : PYFLEET_OK;
  g_abi.load()->status_free(s);
  return 7;
}

TEST(InterpreterFinalizeTest, FinalizeFromInsideACallIsRefused) {
  auto libs = NativeLibraries::create();
  auto interp = Interpreter::create(libs);
  const Raw raw = Raw::of(*interp);
  g_abi = raw.abi;
  g_interp = raw.interp;
  const std::string code = "import ctypes\nrc = ctypes.CFUNCTYPE(ctypes.c_int)(" +
                           std::to_string(reinterpret_cast<uintptr_t>(&FinalizeFromInsideACall)) + ")()\n";
  AbiStatus s = raw.run(code);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(g_finalize_code.load(), PYFLEET_FAILED_PRECONDITION);
  EXPECT_EQ(interp->eval("rc").toInt(), 7);  // still alive
  interp.release();
}

// Item 4 of issue 7: after finalize every entry with a status refuses
// (FAILED_PRECONDITION); the ones without are safe no-ops, and value_clear still frees
// what a value owns outside Python.
TEST(InterpreterFinalizeTest, EntriesAfterFinalizeRefuseOrDoNothing) {
  auto libs = NativeLibraries::create();
  auto interp = Interpreter::create(libs);
  const Raw raw = Raw::of(*interp);
  PyfleetObj* obj = nullptr;
  ASSERT_TRUE(AbiStatus(raw.abi, raw.abi->eval(raw.interp, "[1, 2]", &obj)).ok());
  interp.reset();  // finalize

  auto refused = [&](PyfleetStatus* status, const char* entry) {
    AbiStatus s(raw.abi, status);
    EXPECT_EQ(s.code(), PYFLEET_FAILED_PRECONDITION) << entry << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr("finalized")) << entry;
  };
  PyfleetObj* out = nullptr;
  PyfleetValue none{};
  PyfleetValue result{};
  int32_t flag = 0;
  char* text = nullptr;
  refused(raw.abi->run(raw.interp, "x = 1", "<test>"), "run");
  refused(raw.abi->eval(raw.interp, "1", &out), "eval");
  refused(raw.abi->import_module(raw.interp, "sys", &out), "import_module");
  refused(raw.abi->get_attr(raw.interp, obj, "append", &out), "get_attr");
  refused(raw.abi->get_item(raw.interp, obj, &none, &out), "get_item");
  refused(raw.abi->call(raw.interp, obj, nullptr, 0, nullptr, 0, &out), "call");
  refused(raw.abi->to_value(raw.interp, obj, &result), "to_value");
  refused(raw.abi->from_value(raw.interp, &none, &out), "from_value");
  refused(raw.abi->repr(raw.interp, obj, &text), "repr");
  refused(raw.abi->make_package_importer(raw.interp, nullptr, &out), "make_package_importer");
  refused(raw.abi->call_value(raw.interp, obj, nullptr, 0, nullptr, 0, &result), "call_value");
  refused(raw.abi->has_attr(raw.interp, obj, "append", &flag), "has_attr");
  refused(raw.abi->interrupt(raw.interp, 1, &flag), "interrupt");
  {
    AbiStatus again(raw.abi, raw.abi->finalize(raw.interp));
    EXPECT_EQ(again.code(), PYFLEET_FAILED_PRECONDITION);
    EXPECT_THAT(again.message(), HasSubstr("already finalized"));
  }
  EXPECT_EQ(out, nullptr);

  // The entries without a status: no-ops that never touch the dead CPython.
  EXPECT_EQ(raw.abi->obj_retain(raw.interp, obj), obj);
  raw.abi->obj_release(raw.interp, obj);
  raw.abi->detach_thread(raw.interp);
  raw.abi->clear_interrupt(raw.interp, 1);
  // value_clear frees a result's own parts, nested ones included, and forgets OBJECTs.
  at::Tensor t = at::ones({3});
  auto* items = static_cast<PyfleetValue*>(std::calloc(3, sizeof(PyfleetValue)));
  items[0].kind = PYFLEET_VALUE_TENSOR;
  items[0].u.tensor = c10::intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(t.getIntrusivePtr()).release();
  items[1].kind = PYFLEET_VALUE_STRING;
  items[1].u.str.data = strdup("text");
  items[1].u.str.size = 4;
  items[2].kind = PYFLEET_VALUE_OBJECT;
  items[2].u.obj = obj;
  PyfleetValue list{};
  list.kind = PYFLEET_VALUE_LIST;
  list.u.seq.items = items;
  list.u.seq.size = 3;
  EXPECT_EQ(t.use_count(), 2);
  raw.abi->value_clear(raw.interp, &list);
  EXPECT_EQ(t.use_count(), 1);
  EXPECT_EQ(list.kind, PYFLEET_VALUE_NONE);
  EXPECT_EQ(list.u.seq.items, nullptr);
}

}  // namespace
}  // namespace pyfleet
