// File: host_api_test.cpp
//
// The host API (InterpreterManager, sessions, Obj, Package, ReplicatedObj) on real
// interpreters and real packages written by torch's stock exporter; results compared
// with what torch's stock PackageImporter computed in Debian's python3
// (make_host_packages.py).
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include "pyfleet/pyfleet.h"
#include "runtime/src/access.h"
#include "runtime/src/interpreter_core.h"
#include "tests/common/error_of.h"
#include "tests/runtime/host_api_test_env.h"

namespace pyfleet {
namespace {

using ::testing::HasSubstr;
using testing::ExpectSameIValue;
using testing::HostPackage;
using testing::LoadReference;
using testing::SharedManager;
using testing::ErrorOf;

// ---- Results equal torch's stock importer, from many threads -------------------------

class ManyThreadsTest : public ::testing::TestWithParam<size_t> {};

TEST_P(ManyThreadsTest, ResultsEqualStockImporterFromEightThreads) {
  InterpreterManager manager(GetParam());
  const std::vector<std::string> names = {"mlp", "nested", "numpy_model", "autograd"};
  std::vector<ReplicatedObj> models;
  std::vector<testing::Reference> refs;
  for (const std::string& name : names) {
    Package package = manager.loadPackage(HostPackage(name));
    models.push_back(package.loadPickle("model", "model.pkl"));
    refs.push_back(LoadReference(manager, name));
  }
  constexpr int kThreads = 8, kCallsPerThread = 25;
  std::vector<std::vector<c10::IValue>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        const size_t m = (t + i) % models.size();
        results[t].push_back(models[m].callKwargs(refs[m].args, refs[m].kwargs));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(results[t].size(), static_cast<size_t>(kCallsPerThread));
    for (int i = 0; i < kCallsPerThread; ++i) {
      const size_t m = (t + i) % models.size();
      ExpectSameIValue(refs[m].expected, results[t][i], names[m]);
    }
  }
  // Every interpreter took part, and materialised each model at most once.
  Metrics metrics = manager.metrics();
  EXPECT_EQ(metrics.total.calls, static_cast<uint64_t>(kThreads * kCallsPerThread) + /*loadPickle*/ 0);
  for (const InterpreterMetrics& im : metrics.interpreters) EXPECT_GT(im.calls, 0u) << "interpreter " << im.index;
  for (const ReplicatedObj& model : models) EXPECT_LE(model.materializations(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Interpreters, ManyThreadsTest, ::testing::Values(2, 4));

TEST(ReplicatedObjTest, NestedResultIsOneStructure) {
  InterpreterManager& manager = SharedManager();
  ReplicatedObj model = manager.loadPackage(HostPackage("nested")).loadPickle("model", "model.pkl");
  testing::Reference ref = LoadReference(manager, "nested");
  c10::IValue result = model.callKwargs(ref.args, ref.kwargs);
  ASSERT_TRUE(result.isGenericDict());
  c10::impl::GenericDict dict = result.toGenericDict();
  EXPECT_TRUE(dict.at("parts").isTensorList());  // a list of tensors keeps its element type
  const auto& meta = dict.at("meta").toTupleRef().elements();
  EXPECT_EQ(meta[0].toInt(), 2);
  EXPECT_EQ(meta[1].toStringRef(), "nested");
  EXPECT_DOUBLE_EQ(meta[2].toDouble(), 0.5);
}

// ---- ReplicatedObj: one copy per interpreter, weights shared ------------------------

// True if [p, p + n) lies in a mapping of `path` in this process.
bool InMappingOf(const void* p, const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto address = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    uintptr_t start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &start, &end) != 2) continue;
    if (address >= start && address < end && line.find(path) != std::string::npos) return true;
  }
  return false;
}

TEST(ReplicatedObjTest, OneCopyPerInterpreterWithWeightsInThePackageMapping) {
  InterpreterManager manager(2);
  const std::string path = HostPackage("mlp");
  ReplicatedObj model = manager.loadPackage(path).loadPickle("model", "model.pkl");
  std::vector<void*> weights;
  for (const Interpreter& interp : manager.allInstances()) {
    InterpreterSession session = model.acquireSession(&interp);
    at::Tensor w = session.self.attr("net").attr("0").attr("weight").toIValue().toTensor();
    weights.push_back(w.data_ptr());
    EXPECT_TRUE(InMappingOf(w.data_ptr(), path)) << "the weight of " << w.sizes() << " is not in " << path;
  }
  EXPECT_EQ(weights[0], weights[1]);  // one storage for both interpreters
  EXPECT_EQ(model.materializations(), 2u);
  for (int i = 0; i < 50; ++i) (void)model({at::ones({1, 16})});
  EXPECT_EQ(model.materializations(), 2u);  // cached, not loaded again
  EXPECT_EQ(model.loadedCopies(), 2u);

  model.unload(&manager.allInstances()[1]);
  EXPECT_EQ(model.loadedCopies(), 1u);
  model.unload();
  EXPECT_EQ(model.loadedCopies(), 0u);
  (void)model({at::ones({1, 16})});
  EXPECT_EQ(model.materializations(), 3u);  // made again after unload
}

TEST(ReplicatedObjTest, MoreThreadsThanInterpretersAllFinish) {
  InterpreterManager& manager = SharedManager();
  ReplicatedObj model = manager.loadPackage(HostPackage("mlp")).loadPickle("model", "model.pkl");
  at::Tensor x = at::ones({2, 16});
  at::Tensor expected = model({x}).toTensor();
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        InterpreterSession session = manager.acquireOne();  // sessions held while calling
        ASSERT_TRUE(at::equal(model({x}).toTensor(), expected));
      }
      ++done;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(done.load(), 16);
}

TEST(ReplicatedObjTest, CreateMovableSharesStorages) {
  InterpreterManager manager(2);
  manager.registerModuleSource("make_tensor", "import torch\ndef get():\n    return torch.arange(6.0)\n");
  InterpreterSession first = manager.acquireOne();
  InterpreterSession second = manager.acquireOne();
  ASSERT_NE(&first.interpreter(), &second.interpreter());
  Obj on_first = first.global("make_tensor", "get")();
  ReplicatedObj replicated = manager.createMovable(on_first, &first);
  Obj on_second = second.fromMovable(replicated);
  at::Tensor a = on_first.toIValue().toTensor();
  at::Tensor b = on_second.toIValue().toTensor();
  EXPECT_TRUE(a.storage().is_alias_of(b.storage()));
  EXPECT_TRUE(at::equal(a, b));
}

TEST(ReplicatedObjTest, EmptyReplicatedObjIsFailedPrecondition) {
  ReplicatedObj empty;
  Error e = ErrorOf([&] { (void)empty({at::ones({1})}); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ReplicatedObjTest, HasattrAndPythonMethodWrapper) {
  InterpreterManager& manager = SharedManager();
  ReplicatedObj model = manager.loadPackage(HostPackage("mlp")).loadPickle("model", "model.pkl");
  EXPECT_TRUE(model.hasattr("forward"));
  EXPECT_FALSE(model.hasattr("make_prediction"));
  PythonMethodWrapper forward(model, "forward");
  const torch::IMethod& method = forward;
  EXPECT_EQ(method.name(), "forward");
  EXPECT_THAT(method.getArgumentNames(), ::testing::ElementsAre("x"));
  at::Tensor x = at::ones({2, 16});
  EXPECT_TRUE(at::equal(method({x}).toTensor(), model({x}).toTensor()));
}

// ---- Errors ---------------------------------------------------------------------------

TEST(HostApiErrorsTest, ObjOfAnotherInterpreterNamesBoth) {
  InterpreterManager& manager = SharedManager();
  InterpreterSession a = manager.allInstances()[0].acquireSession();
  InterpreterSession b = manager.allInstances()[1].acquireSession();
  Obj list_on_a = a.global("builtins", "list")();
  Obj len_on_b = b.global("builtins", "len");
  Error e = ErrorOf([&] { len_on_b({list_on_a}); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  const int ia = internal::Access::core(manager.allInstances()[0])->index();
  const int ib = internal::Access::core(manager.allInstances()[1])->index();
  EXPECT_THAT(std::string(e.what()), HasSubstr("interpreter " + std::to_string(ia)));
  EXPECT_THAT(std::string(e.what()), HasSubstr("interpreter " + std::to_string(ib)));
  EXPECT_FALSE(b.isOwner(list_on_a));
  EXPECT_TRUE(a.isOwner(list_on_a));
  Error movable = ErrorOf([&] { manager.createMovable(list_on_a, &b); });
  EXPECT_THAT(std::string(movable.what()),
              HasSubstr("Cannot create movable from an object that lives in different session"));
}

TEST(HostApiErrorsTest, PythonExceptionKeepsTypeMessageTracebackAndInterpretersServe) {
  InterpreterManager& manager = SharedManager();
  ReplicatedObj model = manager.loadPackage(HostPackage("raising")).loadPickle("model", "model.pkl");
  for (int i = 0; i < 8; ++i) {  // on every interpreter
    Error e = ErrorOf([&] { (void)model({at::ones({3})}); });
    EXPECT_EQ(e.pythonType(), "builtins.ValueError");
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(e.what()), HasSubstr("ValueError"));
    EXPECT_THAT(std::string(e.what()), HasSubstr("expected a 2-d input, got 1 dimensions"));
    EXPECT_THAT(e.traceback(), HasSubstr("in _check"));
    EXPECT_THAT(e.traceback(), HasSubstr("host_models/models.py"));
  }
  ReplicatedObj echo = manager.loadPackage(HostPackage("echo")).loadPickle("model", "model.pkl");
  for (const Interpreter& interp : manager.allInstances()) {
    InterpreterSession s = interp.acquireSession();
    EXPECT_EQ(s.global("builtins", "abs")({c10::IValue(-3)}).toIValue().toInt(), 3);
  }
  EXPECT_EQ(echo({c10::IValue(7)}).toInt(), 7);
}

TEST(HostApiErrorsTest, UnconvertibleResultNamesTypeAndPlace) {
  InterpreterManager& manager = SharedManager();
  ReplicatedObj model = manager.loadPackage(HostPackage("opaque")).loadPickle("model", "model.pkl");
  Error e = ErrorOf([&] { (void)model({at::ones({2})}); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(e.what()), HasSubstr("Opaque"));
  EXPECT_THAT(std::string(e.what()), HasSubstr("['payload']"));
}

TEST(HostApiErrorsTest, MissingRecordFailsAtLoadPickle) {
  InterpreterManager& manager = SharedManager();
  Package package = manager.loadPackage(HostPackage("mlp"));
  Error e = ErrorOf([&] { package.loadPickle("some other", "garbage path"); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(e.pythonType(), "builtins.ModuleNotFoundError");
}

TEST(HostApiErrorsTest, EmptyObjIsFailedPrecondition) {
  Obj empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.interpreterIndex(), -1);
  for (auto use : std::vector<std::function<void()>>{
           [&] { empty.attr("x"); }, [&] { empty(); }, [&] { empty.toIValue(); }, [&] { empty.toValue(); },
           [&] { empty.repr(); }, [&] { empty.hasattr("x"); }, [&] { empty.call({}); }}) {
    EXPECT_EQ(ErrorOf(use).status().code(), absl::StatusCode::kFailedPrecondition);
  }
  InterpreterSession s = SharedManager().acquireOne();
  Obj moved = s.global("builtins", "len");
  Obj taker = std::move(moved);
  EXPECT_EQ(ErrorOf([&] { moved.attr("__name__"); }).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(taker.attr("__name__").toIValue().toStringRef(), "len");
}

// ---- Asynchronous calls ----------------------------------------------------------------

ManagerOptions OneWorker(size_t max_queue) {
  ManagerOptions options;
  options.async_workers = 1;
  options.max_queue = max_queue;
  options.stuck_after = std::chrono::milliseconds(50);
  return options;
}

TEST(SubmitTest, ReturnsTheResult) {
  InterpreterManager& manager = SharedManager();
  ReplicatedObj model = manager.loadPackage(HostPackage("mlp")).loadPickle("model", "model.pkl");
  at::Tensor x = at::ones({2, 16});
  std::vector<std::future<c10::IValue>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(model.submit({x}));
  at::Tensor expected = model({x}).toTensor();
  for (auto& f : futures) EXPECT_TRUE(at::equal(f.get().toTensor(), expected));
  std::promise<CallResult> got;
  model.submit({x}, [&](CallResult r) { got.set_value(std::move(r)); });
  CallResult r = got.get_future().get();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(at::equal(r.value().toTensor(), expected));
}

TEST(SubmitTest, FullQueueFailsFastWithResourceExhausted) {
  InterpreterManager manager(1, std::make_shared<NoopEnvironment>(), OneWorker(2));
  ReplicatedObj sleeps = manager.loadPackage(HostPackage("sleeps")).loadPickle("model", "model.pkl");
  std::future<c10::IValue> running = sleeps.submit({c10::IValue(0.3)});
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the worker took it
  std::future<c10::IValue> q1 = sleeps.submit({c10::IValue(0.0)});
  std::future<c10::IValue> q2 = sleeps.submit({c10::IValue(0.0)});
  const auto before = std::chrono::steady_clock::now();
  Error e = ErrorOf([&] { sleeps.submit({c10::IValue(0.0)}); });
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(100));  // did not wait
  EXPECT_EQ(e.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_DOUBLE_EQ(running.get().toDouble(), 0.3);
  EXPECT_DOUBLE_EQ(q1.get().toDouble(), 0.0);
  EXPECT_DOUBLE_EQ(q2.get().toDouble(), 0.0);
  EXPECT_EQ(manager.metrics().rejected, 1u);
}

TEST(SubmitTest, DeadlineOfAQueuedCall) {
  InterpreterManager manager(1, std::make_shared<NoopEnvironment>(), OneWorker(8));
  ReplicatedObj sleeps = manager.loadPackage(HostPackage("sleeps")).loadPickle("model", "model.pkl");
  std::future<c10::IValue> busy = sleeps.submit({c10::IValue(0.5)});
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CallOptions options;
  options.timeout = std::chrono::milliseconds(50);
  const auto start = std::chrono::steady_clock::now();
  std::future<c10::IValue> queued = sleeps.submit({c10::IValue(0.0)}, options);
  Error e = ErrorOf([&] { queued.get(); });
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(e.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(waited, std::chrono::milliseconds(400));  // on time, not after the busy call
  EXPECT_DOUBLE_EQ(busy.get().toDouble(), 0.5);
}

TEST(SubmitTest, DeadlineInterruptsPurePythonAndTheInterpreterServesAgain) {
  InterpreterManager manager(1, std::make_shared<NoopEnvironment>(), OneWorker(8));
  ReplicatedObj spins = manager.loadPackage(HostPackage("spins")).loadPickle("model", "model.pkl");
  ReplicatedObj echo = manager.loadPackage(HostPackage("echo")).loadPickle("model", "model.pkl");
  CallOptions options;
  options.timeout = std::chrono::milliseconds(100);
  const auto start = std::chrono::steady_clock::now();
  std::future<c10::IValue> f = spins.submit({at::ones({1})}, options);
  Error e = ErrorOf([&] { f.get(); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // The one interpreter comes back to service: an asynchronous and a direct call work.
  EXPECT_EQ(echo.submit({c10::IValue(5)}).get().toInt(), 5);
  EXPECT_EQ(echo({c10::IValue(6)}).toInt(), 6);
  Metrics m = manager.metrics();
  EXPECT_EQ(m.total.timeouts, 1u);
  EXPECT_EQ(m.stuck_interpreters, 0);
}

TEST(SubmitTest, NativeCallPastItsDeadlineIsStuckUntilItReturns) {
  InterpreterManager manager(1, std::make_shared<NoopEnvironment>(), OneWorker(8));
  ReplicatedObj sleeps = manager.loadPackage(HostPackage("sleeps")).loadPickle("model", "model.pkl");
  CallOptions options;
  options.timeout = std::chrono::milliseconds(50);
  std::future<c10::IValue> f = sleeps.submit({c10::IValue(0.6)}, options);
  EXPECT_EQ(ErrorOf([&] { f.get(); }).status().code(), absl::StatusCode::kDeadlineExceeded);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // > deadline + stuck_after
  EXPECT_EQ(manager.metrics().stuck_interpreters, 1);
  EXPECT_TRUE(manager.metrics().interpreters[0].stuck);
  // It returns after 0.6 s and serves again.
  EXPECT_DOUBLE_EQ(sleeps.submit({c10::IValue(0.0)}).get().toDouble(), 0.0);
  EXPECT_EQ(manager.metrics().stuck_interpreters, 0);
}

TEST(SubmitTest, CancelledWhileQueued) {
  InterpreterManager manager(1, std::make_shared<NoopEnvironment>(), OneWorker(8));
  ReplicatedObj sleeps = manager.loadPackage(HostPackage("sleeps")).loadPickle("model", "model.pkl");
  std::future<c10::IValue> busy = sleeps.submit({c10::IValue(0.3)});
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CallOptions options;
  options.cancellation = std::make_shared<Cancellation>();
  std::future<c10::IValue> queued = sleeps.submit({c10::IValue(0.0)}, options);
  options.cancellation->cancel();
  EXPECT_EQ(ErrorOf([&] { queued.get(); }).status().code(), absl::StatusCode::kCancelled);
  EXPECT_DOUBLE_EQ(busy.get().toDouble(), 0.3);
  EXPECT_EQ(manager.metrics().total.cancelled, 1u);
}

TEST(SubmitTest, ManagerGoneQueuedCallsCancelledLaterSubmitsRefused) {
  ReplicatedObj sleeps;
  std::future<c10::IValue> queued;
  {
    InterpreterManager manager(1, std::make_shared<NoopEnvironment>(), OneWorker(8));
    sleeps = manager.loadPackage(HostPackage("sleeps")).loadPickle("model", "model.pkl");
    std::future<c10::IValue> busy = sleeps.submit({c10::IValue(0.2)});
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    queued = sleeps.submit({c10::IValue(0.0)});
  }
  EXPECT_EQ(ErrorOf([&] { queued.get(); }).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(ErrorOf([&] { sleeps.submit({c10::IValue(0.0)}); }).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The ReplicatedObj keeps the interpreters alive: direct calls still work.
  EXPECT_DOUBLE_EQ(sleeps({c10::IValue(0.0)}).toDouble(), 0.0);
}

// ---- Managers, packages, modules, environments -----------------------------------------

TEST(InterpreterManagerTest, LoadingAPathTwiceSharesTheArchive) {
  InterpreterManager& manager = SharedManager();
  Package a = manager.loadPackage(HostPackage("mlp"));
  Package b = manager.loadPackage(HostPackage("mlp"));
  InterpreterManager other(1);
  Package c = other.loadPackage(HostPackage("mlp"));
  EXPECT_EQ(internal::Access::archive(a), internal::Access::archive(b));
  EXPECT_EQ(internal::Access::archive(a), internal::Access::archive(c));
}

TEST(InterpreterManagerTest, RegisteredModulesReachEveryInterpreter) {
  InterpreterManager& manager = SharedManager();
  const size_t before = manager.countRegisteredModuleSources();
  manager.registerModuleSource("host_api_added", "def add1(x):\n    return x + 1\n");
  EXPECT_EQ(manager.countRegisteredModuleSources(), before + 1);
  for (const Interpreter& interp : manager.allInstances()) {
    InterpreterSession s = interp.acquireSession();
    EXPECT_EQ(s.global("host_api_added", "add1")({c10::IValue(2)}).toIValue().toInt(), 3);
  }
}

TEST(InterpreterManagerTest, FreshManagerCountsGetArgumentNamesModule) {
  InterpreterManager manager(1);
  EXPECT_EQ(manager.countRegisteredModuleSources(), 1u);
}

TEST(InterpreterManagerTest, ATensorAnOldInterpreterWrappedWorksInANewManager) {
  at::Tensor t = at::arange(4.0);
  {
    InterpreterManager old(1);
    InterpreterSession s = old.acquireOne();
    (void)s.fromIValue(t);
  }
  InterpreterManager fresh(1);
  InterpreterSession s = fresh.acquireOne();
  at::Tensor doubled = s.global("torch", "mul")({c10::IValue(t), c10::IValue(2)}).toIValue().toTensor();
  EXPECT_TRUE(at::equal(doubled, t * 2));
  EXPECT_TRUE(s.fromIValue(t).toIValue().toTensor().storage().is_alias_of(t.storage()));
}

class CountingEnvironment : public Environment {
 public:
  explicit CountingEnvironment(std::string path) : Environment({std::move(path)}) {}
  void configureInterpreter(Interpreter* interp) override {
    interp->run("import sys\nsys.pyfleet_configured = True\n");
    ++configured;
  }
  std::atomic<int> configured{0};
};

TEST(InterpreterManagerTest, EnvironmentPathsAndHookReachEachInterpreter) {
  auto env = std::make_shared<CountingEnvironment>("/pyfleet/test/extra/path");
  InterpreterManager manager(2, env);
  EXPECT_EQ(env->configured.load(), 2);
  for (const Interpreter& interp : manager.allInstances()) {
    InterpreterSession s = interp.acquireSession();
    EXPECT_TRUE(s.global("sys", "pyfleet_configured").toIValue().toBool());
    c10::IValue path = s.global("sys", "path").toIValue();
    std::vector<std::string> entries;
    for (const c10::IValue& p : path.toListRef()) entries.push_back(p.toStringRef());
    EXPECT_THAT(entries, ::testing::Contains("/pyfleet/test/extra/path"));
  }
}

TEST(InterpreterManagerTest, SessionsPreferTheInterpreterTheThreadUsedLast) {
  InterpreterManager& manager = SharedManager();
  const Interpreter* first = nullptr;
  {
    InterpreterSession s = manager.acquireOne();
    first = &s.interpreter();
  }
  for (int i = 0; i < 5; ++i) {
    InterpreterSession s = manager.acquireOne();
    EXPECT_EQ(&s.interpreter(), first);
  }
  InterpreterSession held = manager.acquireOne();
  InterpreterSession second = manager.acquireOne();  // the first is busy: another one
  EXPECT_NE(&second.interpreter(), &held.interpreter());
}

// Note [Operator libraries load once per process]: torchvision's operator library
// registers its ops with the one dispatcher once; every interpreter can use them.
TEST(InterpreterManagerTest, TorchvisionOperatorsWorkInEveryInterpreter) {
  InterpreterManager& manager = SharedManager();
  for (const Interpreter& interp : manager.allInstances()) {
    InterpreterSession s = interp.acquireSession();
    at::Tensor boxes = at::tensor({0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0}).reshape({3, 4});
    at::Tensor scores = at::tensor({0.9, 0.8, 0.7});
    at::Tensor keep = s.global("torchvision.ops", "nms")({boxes, scores, 0.5}).toIValue().toTensor();
    EXPECT_TRUE(at::equal(keep, at::tensor({0, 2}, at::kLong))) << keep;
  }
}

TEST(InterpreterManagerTest, MetricsCountCallsAndErrors) {
  InterpreterManager manager(2);
  ReplicatedObj echo = manager.loadPackage(HostPackage("echo")).loadPickle("model", "model.pkl");
  ReplicatedObj raising = manager.loadPackage(HostPackage("raising")).loadPickle("model", "model.pkl");
  for (int i = 0; i < 10; ++i) (void)echo({c10::IValue(i)});
  for (int i = 0; i < 3; ++i) ErrorOf([&] { (void)raising({at::ones({1})}); });
  Metrics m = manager.metrics();
  EXPECT_EQ(m.total.calls, 13u);
  EXPECT_EQ(m.total.errors, 3u);
  EXPECT_EQ(m.total.run_time.count, 13u);
  EXPECT_GT(m.total.busy_seconds, 0.0);
  EXPECT_GT(m.total.run_time.quantile(0.5), 0.0);
  EXPECT_EQ(m.interpreters.size(), 2u);
  EXPECT_EQ(m.busy_interpreters, 0);
}

}  // namespace
}  // namespace pyfleet
