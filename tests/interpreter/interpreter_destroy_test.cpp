// Destroying an interpreter (Py_FinalizeEx) in a process that keeps going: host tensors
// made by it stay valid, its leftover Obj handles fail cleanly, and new interpreters
// still start. Its own binary: it needs a fresh process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "pyfleet/interpreter.h"

namespace pyfleet {
namespace {

TEST(InterpreterDestroyTest, FinalizedInterpreterLeavesHostTensorsAndProcessUsable) {
  auto libs = NativeLibraries::create();
  at::Tensor made;       // created by the interpreter, owned by a Python object at first
  at::Tensor host_seen;  // a host tensor the interpreter wrapped (tagged with it)
  std::unique_ptr<Obj> leftover;
  {
    auto interp = Interpreter::create(libs);
    interp->run("import torch\nkeep = []\ndef make():\n    t = torch.arange(6.0)\n    keep.append(t)\n    return t\n");
    made = interp->global("__main__", "make")().toTensor();
    host_seen = at::ones({3});
    interp->eval("lambda t: keep.append(t)")({host_seen});
    leftover = std::make_unique<Obj>(interp->eval("keep"));
  }  // ~Interpreter: Py_FinalizeEx; torch's PyInterpreter is disarmed first
  EXPECT_TRUE(at::equal(made, at::arange(6.0)));
  EXPECT_TRUE(at::equal(host_seen, at::ones({3})));
  try {
    leftover->attr("append");
    FAIL() << "expected FAILED_PRECONDITION";
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(e.status().message()), ::testing::HasSubstr("finalized"));
  }
  leftover.reset();    // releasing a dead interpreter's object is a no-op
  made = at::Tensor();  // dropping tensors whose PyObjects died with it must not crash
  host_seen = at::Tensor();

  auto next = Interpreter::create(libs);  // a new copy starts fine afterwards
  next->run("import torch\n");
  at::Tensor t = at::full({2}, 21.0);
  EXPECT_TRUE(at::equal(next->eval("lambda t: t * 2")({t}).toTensor(), at::full({2}, 42.0)));
  next.release();  // interpreters normally live until exit (ARCHITECTURE.md §11)
}

}  // namespace
}  // namespace pyfleet
