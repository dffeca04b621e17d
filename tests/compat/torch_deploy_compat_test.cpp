// File: torch_deploy_compat_test.cpp
//
// Code written for torch::deploy (multipy) compiled unchanged through
// <pyfleet/torch_deploy.h>: every name of deploy.h's public API, used the way multipy's
// users used it, on real packages. The deliberate differences the header documents are
// tested as pyfleet's behaviour.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <stdexcept>
#include <string>
#include <vector>

#include <pyfleet/torch_deploy.h>

namespace {

std::string HostPackage(const std::string& name) { return std::string(PYFLEET_HOST_PACKAGES) + "/" + name + ".pt"; }

TEST(TorchDeployCompatTest, ManagerPackageReplicatedObjAndSessions) {
  torch::deploy::InterpreterManager m(2);
  EXPECT_EQ(m.countRegisteredModuleSources(), 1u);
  torch::deploy::Package p = m.loadPackage(HostPackage("mlp"));
  torch::deploy::ReplicatedObj model = p.loadPickle("model", "model.pkl");
  at::IValue example;
  {
    auto I = p.acquireSession();
    example = I.self.attr("load_pickle")({"model", "example.pkl"}).toIValue();
  }
  at::Tensor out = model(example.toTupleRef().elements()).toTensor();
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 4}));

  std::vector<c10::IValue> args{example.toTupleRef().elements()[0]};
  std::unordered_map<std::string, c10::IValue> no_kwargs;
  EXPECT_TRUE(model.callKwargs(args, no_kwargs).toTensor().equal(out));
  std::unordered_map<std::string, c10::IValue> kwargs{{"x", example.toTupleRef().elements()[0]}};
  EXPECT_TRUE(model.callKwargs(kwargs).toTensor().equal(out));
  EXPECT_TRUE(model.hasattr("forward"));
  EXPECT_FALSE(model.hasattr("make_prediction"));

  // Threads through std::async, as multipy's ThreadedSimpleModel does.
  std::vector<std::future<at::Tensor>> futures;
  for (int t = 0; t < 3; ++t) {
    futures.push_back(std::async(std::launch::async, [&] {
      at::Tensor r;
      for (int i = 0; i < 20; ++i) r = model(example.toTupleRef().elements()).toTensor();
      return r;
    }));
  }
  for (auto& f : futures) EXPECT_TRUE(f.get().equal(out));

  model.unload();
  multipy::runtime::InterpreterSession s = model.acquireSession(&m.allInstances()[1]);
  EXPECT_TRUE(s.self.attr("forward")({example.toTupleRef().elements()[0]}).toIValue().toTensor().equal(out));
}

TEST(TorchDeployCompatTest, MovableRegisteredModulesAndInterpreters) {
  torch::deploy::InterpreterManager m(2);
  m.registerModuleSource("foomodule", "def add1(x): return x + 1\n");
  for (const auto& interp : m.allInstances()) {
    auto I = interp.acquireSession();
    EXPECT_EQ(I.global("foomodule", "add1")({2}).toIValue().toInt(), 3);
  }
  torch::deploy::ReplicatedObj obj;
  {
    auto I = m.acquireOne();
    auto module = I.global("torch.nn", "Linear")({4, 2});
    obj = m.createMovable(module, &I);
    EXPECT_TRUE(I.isOwner(module));
  }
  auto I = obj.acquireSession();
  at::Tensor y = I.self({at::ones({1, 4})}).toIValue().toTensor();
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 2}));
  torch::deploy::Obj from_session = obj.toObj(&I);
  EXPECT_TRUE(I.isOwner(from_session));
  auto none = I.global("builtins", "id")(std::vector<torch::deploy::Obj>{I.fromIValue(at::IValue())});
  EXPECT_GT(none.toIValue().toInt(), 0);
  m.debugLimitInterpreters(1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(&m.acquireOne().interpreter(), &m.allInstances()[0]);
}

TEST(TorchDeployCompatTest, ErrorsAreRuntimeErrors) {
  torch::deploy::InterpreterManager m(2);
  torch::deploy::Package p = m.loadPackage(HostPackage("mlp"));
  EXPECT_THROW(p.loadPickle("some other", "garbage path"), std::runtime_error);
  auto model = p.loadPickle("model", "model.pkl");
  EXPECT_THROW(model(at::IValue("unexpected input")), std::runtime_error);
  auto a = m.allInstances()[0].acquireSession();
  auto b = m.allInstances()[1].acquireSession();
  auto obj = a.global("builtins", "object")(std::vector<torch::deploy::Obj>());
  try {
    p.createMovable(obj, &b);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("Cannot create movable from an object that lives in different session"));
  }
  EXPECT_THROW(MULTIPY_INTERNAL_ASSERT(false), std::runtime_error);
  EXPECT_THROW(MULTIPY_INTERNAL_ASSERT(false, "message"), std::runtime_error);
  EXPECT_THROW(MULTIPY_CHECK(1 == 2), std::runtime_error);
  EXPECT_NO_THROW(MULTIPY_CHECK(true, "never"));
}

TEST(TorchDeployCompatTest, TensorHandedToASecondInterpreterIsAnAlias) {
  // Deliberate difference 1: torch::deploy threw here (TensorSharingNotAllowed).
  torch::deploy::InterpreterManager m(2);
  auto I0 = m.allInstances()[0].acquireSession();
  auto I1 = m.allInstances()[1].acquireSession();
  at::Tensor t = I0.global("torch", "ones")({I0.fromIValue(2)}).toIValue().toTensor();
  at::Tensor s = I1.global("torch", "sigmoid")({t}).toIValue().toTensor();
  EXPECT_TRUE(s.allclose(at::sigmoid(t)));
}

TEST(TorchDeployCompatTest, EnvironmentsAndPythonMethodWrapper) {
  auto env = std::make_shared<torch::deploy::PathEnvironment>("/pyfleet/compat/path");
  torch::deploy::InterpreterManager m(1, env);
  auto I = m.acquireOne();
  bool found = false;
  const c10::IValue path = I.global("sys", "path").toIValue();
  for (const c10::IValue& p : path.toListRef()) found |= p.toStringRef() == "/pyfleet/compat/path";
  EXPECT_TRUE(found);
  std::shared_ptr<torch::deploy::Environment> noop = std::make_shared<torch::deploy::NoopEnvironment>();
  EXPECT_TRUE(noop->getExtraPythonPaths().empty());

  torch::deploy::PythonMethodWrapper forward(m.loadPackage(HostPackage("mlp")).loadPickle("model", "model.pkl"),
                                             "forward");
  EXPECT_EQ(forward.getArgumentNames(), std::vector<std::string>{"x"});
  EXPECT_EQ(forward({at::ones({1, 16})}).toTensor().sizes(), (std::vector<int64_t>{1, 4}));

  torch::deploy::LoadBalancer balancer(2);
  const int first = balancer.acquire();
  balancer.free(first);
  EXPECT_EQ(balancer.acquire(), first);  // the same thread gets the same one back
  EXPECT_NE(balancer.acquire(), first);  // it is busy now: another one
}

}  // namespace
