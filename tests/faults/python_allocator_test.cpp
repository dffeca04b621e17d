// File: python_allocator_test.cpp
//
// InterpreterConfig::python_allocator and $PYFLEET_PYTHON_MALLOC (Note [CPython's malloc
// allocator for sanitizer runs] in interpreter/src/lifecycle.cpp): with kMalloc, or the
// variable set to "malloc", an interpreter's CPython allocates every object with malloc
// (sys.getallocatedblocks() counts pymalloc blocks only: 0); by default it uses pymalloc;
// an unknown value fails create with INVALID_ARGUMENT naming it. Either way the
// interpreter imports torch and runs a model.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "pyfleet/pyfleet.h"
#include "tests/faults/fault_test_util.h"

namespace pyfleet {
namespace {

using ::testing::HasSubstr;
using testing::ErrorOf;
using testing::ScopedEnv;

int64_t PymallocBlocks(Interpreter& interp) {
  return interp.eval("__import__('sys').getallocatedblocks()").toIValue().toInt();
}

void ExpectRunsTorch(Interpreter& interp) {
  interp.run("import torch\ny = torch.nn.Linear(4, 2)(torch.ones(1, 4))\nassert tuple(y.shape) == (1, 2)\n");
  EXPECT_EQ(interp.eval("int(__import__('torch').arange(5).sum())").toIValue().toInt(), 10);
}

class PythonAllocatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { libraries_ = NativeLibraries::create(); }
  static void TearDownTestSuite() { libraries_.reset(); }
  static std::shared_ptr<NativeLibraries> libraries_;
};
std::shared_ptr<NativeLibraries> PythonAllocatorTest::libraries_;

TEST_F(PythonAllocatorTest, MallocConfigAllocatesNoPymallocBlocks) {
  ScopedEnv env("PYFLEET_PYTHON_MALLOC", nullptr);
  InterpreterConfig config;
  config.python_allocator = PythonAllocator::kMalloc;
  std::unique_ptr<Interpreter> interp = Interpreter::create(libraries_, config);
  ExpectRunsTorch(*interp);
  EXPECT_EQ(PymallocBlocks(*interp), 0);
}

TEST_F(PythonAllocatorTest, DefaultIsPymalloc) {
  ScopedEnv env("PYFLEET_PYTHON_MALLOC", nullptr);  // scripts/test-sanitizers sets it
  std::unique_ptr<Interpreter> interp = Interpreter::create(libraries_);
  ExpectRunsTorch(*interp);
  EXPECT_GT(PymallocBlocks(*interp), 1000);
}

TEST_F(PythonAllocatorTest, EnvironmentVariableSelectsMallocForTheDefault) {
  ScopedEnv env("PYFLEET_PYTHON_MALLOC", "malloc");
  std::unique_ptr<Interpreter> interp = Interpreter::create(libraries_);
  ExpectRunsTorch(*interp);
  EXPECT_EQ(PymallocBlocks(*interp), 0);
}

TEST_F(PythonAllocatorTest, EnvironmentVariablePymallocKeepsPymalloc) {
  ScopedEnv env("PYFLEET_PYTHON_MALLOC", "pymalloc");
  std::unique_ptr<Interpreter> interp = Interpreter::create(libraries_);
  EXPECT_GT(PymallocBlocks(*interp), 1000);
}

TEST_F(PythonAllocatorTest, UnknownEnvironmentValueIsInvalidArgument) {
  ScopedEnv env("PYFLEET_PYTHON_MALLOC", "debug");
  Error e = ErrorOf([] { Interpreter::create(libraries_); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("PYFLEET_PYTHON_MALLOC=debug"));
  // The library copy of the refused create is left unused; the next interpreter starts.
  ScopedEnv unset("PYFLEET_PYTHON_MALLOC", nullptr);
  std::unique_ptr<Interpreter> interp = Interpreter::create(libraries_);
  EXPECT_EQ(interp->eval("1 + 1").toIValue().toInt(), 2);
}

TEST_F(PythonAllocatorTest, ManagerInterpretersFollowTheEnvironmentVariable) {
  ScopedEnv env("PYFLEET_PYTHON_MALLOC", "malloc");
  InterpreterManager manager(2, std::make_shared<NoopEnvironment>(), ManagerOptions{});
  for (const Interpreter& interp : manager.allInstances()) {
    InterpreterSession session = interp.acquireSession();
    EXPECT_EQ(PymallocBlocks(session.interpreter()), 0);
  }
  ReplicatedObj model = manager.loadPackage(PYFLEET_HOST_PACKAGES "/mlp.pt").loadPickle("model", "model.pkl");
  EXPECT_EQ(model({at::ones({2, 16})}).toTensor().sizes(), (std::vector<int64_t>{2, 4}));
}

}  // namespace
}  // namespace pyfleet
