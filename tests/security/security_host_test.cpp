// File: security_host_test.cpp
//
// pyfleet's security guards through the host API, on real interpreters and packages
// written by torch's stock exporter (make_security_packages.py): integrity pinning
// (PackageOptions::sha256 on Package::open and InterpreterManager::loadPackage), the
// per-interpreter SecurityPolicy (Environment::setSecurityPolicy: extern allowlist and
// audit hook) and safe unpickling (Package::loadPickle with LoadOptions). Every refusal
// is checked for its code, Python type and the name it gives, and every interpreter is
// used again after it.
//
// main() (below) sets the environment the packages read at import time (the port of a
// listening socket, the paths a misbehaving package writes) BEFORE any interpreter
// starts: an interpreter's os.environ is read once, when it starts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pyfleet/pyfleet.h"
#include "runtime/src/access.h"
#include "tests/common/error_of.h"

namespace pyfleet {
namespace {

using ::testing::HasSubstr;
using testing::ErrorOf;

std::string Package_(const std::string& name) { return std::string(PYFLEET_SECURITY_PACKAGES) + "/" + name + ".pt"; }

// digests.txt, written with hashlib when the packages were: name -> sha256.
std::map<std::string, std::string> Digests() {
  std::map<std::string, std::string> out;
  std::ifstream in(std::string(PYFLEET_SECURITY_PACKAGES) + "/digests.txt");
  std::string name, digest;
  while (in >> name >> digest) out[name] = digest;
  return out;
}
std::string DigestOf(const std::string& package) { return Digests().at(package + ".pt"); }

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return s;
}

// What main() sets up: a listening TCP socket on 127.0.0.1 and a private folder.
struct World {
  int listen_fd = -1;
  int port = 0;
  std::string dir;
  std::string marker() const { return dir + "/marker"; }        // evil.pkl's os.system touches it
  std::string write_path() const { return dir + "/written"; }  // secmodels.writes writes it
};
World& TheWorld() {
  static World* world = new World;
  return *world;
}

// Accepts (and closes) every connection made to the listener within `ms`; how many.
int AcceptConnections(int ms) {
  int n = 0;
  pollfd p{TheWorld().listen_fd, POLLIN, 0};
  while (::poll(&p, 1, ms) > 0) {
    int c = ::accept(TheWorld().listen_fd, nullptr, nullptr);
    if (c < 0) break;
    ::close(c);
    ++n;
    ms = 0;
  }
  return n;
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// The extern modules the strict policy allows: what model.pt and vision.pt need, and
// what behaviours.pt's spawns / connects / writes legitimately import (os, subprocess,
// socket). Those must be allowed: what the tests check is that the AUDIT HOOK refuses
// their import-time behaviour; off the allowlist they would be refused earlier, as
// ImportDenied, and the hook never tested. json stays off it (uses_json is refused).
SecurityPolicy StrictPolicy() {
  SecurityPolicy policy;  // no processes, no network, no file writes
  policy.allowed_extern_modules =
      std::vector<std::string>{"torch", "collections", "math", "torchvision", "os", "subprocess", "socket"};
  return policy;
}

// Two interpreters under StrictPolicy(), installed before `import torch`.
InterpreterManager& StrictManager() {
  static InterpreterManager* manager = [] {
    auto env = std::make_shared<NoopEnvironment>();
    env->setSecurityPolicy(StrictPolicy());
    return new InterpreterManager(2, env);  // lives until exit
  }();
  return *manager;
}

// One interpreter without a policy.
InterpreterManager& OpenManager() {
  static InterpreterManager* manager = new InterpreterManager(1);
  return *manager;
}

// Each interpreter of `manager`, through a session pinned to it.
template <typename Body>
void OnEachInterpreter(InterpreterManager& manager, Body&& body) {
  for (const Interpreter& i : manager.allInstances()) {
    InterpreterSession session = i.acquireSession();
    SCOPED_TRACE("interpreter " + std::to_string(i.index()));
    body(session.interpreter());
  }
}

// model.pt's model on its example input, loaded WITHOUT any guard in OpenManager(): the
// reference every guarded load is compared with.
at::Tensor ReferenceOutput(const std::string& package) {
  Package p = OpenManager().loadPackage(Package_(package));
  ReplicatedObj model = p.loadPickle("model", "model.pkl");
  c10::IValue example =
      p.acquireSession().self.attr("load_pickle")({c10::IValue("model"), c10::IValue("example.pkl")}).toIValue();
  return model({example}).toTensor();
}

// Runs model.pt's model in `interp` (its own importer) and compares with the reference:
// the check that an interpreter is still usable after a refusal.
void ExpectUsable(Interpreter& interp) {
  static const at::Tensor expected = ReferenceOutput("model");
  Package p = StrictManager().loadPackage(Package_("model"));
  Obj importer = interp.packageImporter(p);
  Obj model = importer.attr("load_pickle")({c10::IValue("model"), c10::IValue("model.pkl")});
  c10::IValue example = importer.attr("load_pickle")({c10::IValue("model"), c10::IValue("example.pkl")}).toIValue();
  at::Tensor y = model({example}).toIValue().toTensor();
  EXPECT_TRUE(at::allclose(y, expected)) << y << "\nvs\n" << expected;
}

// ---- Integrity pinning --------------------------------------------------------------

TEST(IntegrityTest, OpenAcceptsTheFilesDigestInEitherCase) {
  for (const std::string& digest : {DigestOf("model"), Upper(DigestOf("model"))}) {
    Package p = Package::open(Package_("model"), {digest});
    EXPECT_GT(p.recordCount(), 0u);
  }
}

TEST(IntegrityTest, OpenRefusesAnotherDigestWithPermissionDenied) {
  const std::string wrong = DigestOf("behaviours");
  Error e = ErrorOf([&] { Package::open(Package_("model"), {wrong}); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(e.what(), HasSubstr(Package_("model") + ": SHA-256 mismatch: expected " + wrong +
                                  ", the file has " + DigestOf("model")));
}

TEST(IntegrityTest, MalformedDigestIsInvalidArgument) {
  for (const std::string& bad : {std::string("1234"), std::string(64, 'g'), DigestOf("model") + "0"}) {
    Error e = ErrorOf([&] { Package::open(Package_("model"), {bad}); });
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(e.what(), HasSubstr("64 hex digits")) << bad;
  }
}

TEST(IntegrityTest, LoadPackageVerifiesAFileAlreadyOpenInTheProcess) {
  InterpreterManager& manager = OpenManager();
  Package unpinned = manager.loadPackage(Package_("model"));  // registry: one archive per file
  Error e = ErrorOf([&] { manager.loadPackage(Package_("model"), {DigestOf("vision")}); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(e.what(), HasSubstr("SHA-256 mismatch"));
  Package pinned = manager.loadPackage(Package_("model"), {DigestOf("model")});
  // The same archive (one mapping), now verified; and it serves.
  EXPECT_EQ(internal::Access::archive(pinned).get(), internal::Access::archive(unpinned).get());
  // (model.pt's only source: the exporter writes no secmodels/__init__.py for it.)
  EXPECT_THAT(pinned.loadText("secmodels", "models.py"), HasSubstr("class Mlp"));
  // Pinned with the wrong digest again: the cached digest still refuses it.
  e = ErrorOf([&] { manager.loadPackage(Package_("model"), {DigestOf("behaviours")}); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(IntegrityTest, PinnedLoadOfAModifiedCopyIsRefused) {
  const std::string copy = TheWorld().dir + "/modified.pt";
  {
    std::ifstream in(Package_("model"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bytes[bytes.size() / 2] ^= 0x01;  // one bit, inside the data
    std::ofstream(copy, std::ios::binary) << bytes;
  }
  Error e = ErrorOf([&] { OpenManager().loadPackage(copy, {DigestOf("model")}); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(e.what(), HasSubstr(copy + ": SHA-256 mismatch"));
  ::unlink(copy.c_str());
}

// ---- The security policy: the audit hook ---------------------------------------------

// import_module(`module`) of behaviours.pt in `interp`, with a fresh importer.
Obj ImportFromBehaviours(Interpreter& interp, const std::string& module) {
  Package p = StrictManager().loadPackage(Package_("behaviours"));
  return interp.packageImporter(p).attr("import_module")({c10::IValue(module)});
}

void ExpectAuditRefusal(const Error& e, const std::string& event) {
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied) << e.what();
  EXPECT_EQ(e.pythonType(), "pyfleet.AuditEventDenied");
  EXPECT_THAT(e.what(), HasSubstr("audit event '" + event + "' refused"));
}

TEST(SecurityPolicyTest, ImportTimeSubprocessIsRefused) {
  OnEachInterpreter(StrictManager(), [](Interpreter& interp) {
    ExpectAuditRefusal(ErrorOf([&] { ImportFromBehaviours(interp, "secmodels.spawns"); }), "subprocess.Popen");
    ExpectAuditRefusal(ErrorOf([&] { interp.run("import os\nos.system('true')\n"); }), "os.system");
    ExpectUsable(interp);
  });
}

TEST(SecurityPolicyTest, ImportTimeConnectionIsRefusedAndNothingConnects) {
  AcceptConnections(0);  // drop what other tests left
  OnEachInterpreter(StrictManager(), [](Interpreter& interp) {
    // socket.create_connection resolves the address first: that is the refused event.
    ExpectAuditRefusal(ErrorOf([&] { ImportFromBehaviours(interp, "secmodels.connects"); }), "socket.getaddrinfo");
    ExpectAuditRefusal(ErrorOf([&] {
                         interp.run(
                             "import os, socket\n"
                             "s = socket.socket()\n"
                             "try:\n"
                             "    s.connect(('127.0.0.1', int(os.environ['PYFLEET_SECURITY_PORT'])))\n"
                             "finally:\n"
                             "    s.close()\n");
                       }),
                       "socket.connect");
    ExpectUsable(interp);
  });
  EXPECT_EQ(AcceptConnections(200), 0);
}

TEST(SecurityPolicyTest, ImportTimeFileWriteIsRefused) {
  ::unlink(TheWorld().write_path().c_str());
  OnEachInterpreter(StrictManager(), [](Interpreter& interp) {
    ExpectAuditRefusal(ErrorOf([&] { ImportFromBehaviours(interp, "secmodels.writes"); }), "open");
    ExpectAuditRefusal(ErrorOf([&] { interp.run("import os\nos.remove('" + TheWorld().marker() + "')\n"); }),
                       "os.remove");
    // Reading is not refused.
    EXPECT_EQ(interp.eval("len(open('" + Package_("model") + "', 'rb').read(4))").toIValue().toInt(), 4);
    ExpectUsable(interp);
  });
  EXPECT_FALSE(Exists(TheWorld().write_path()));
}

TEST(SecurityPolicyTest, TheSameImportsSucceedWithoutAPolicy) {
  AcceptConnections(0);
  ::unlink(TheWorld().write_path().c_str());
  Package p = OpenManager().loadPackage(Package_("behaviours"));
  InterpreterSession s = p.acquireSession();
  EXPECT_EQ(s.self.attr("import_module")({c10::IValue("secmodels.spawns")}).attr("RETURNCODE").toIValue().toInt(), 0);
  EXPECT_TRUE(s.self.attr("import_module")({c10::IValue("secmodels.connects")}).attr("CONNECTED").toIValue().toBool());
  EXPECT_EQ(AcceptConnections(5000), 1);
  EXPECT_TRUE(s.self.attr("import_module")({c10::IValue("secmodels.writes")}).attr("WROTE").toIValue().toBool());
  EXPECT_TRUE(Exists(TheWorld().write_path()));
  ::unlink(TheWorld().write_path().c_str());
}

TEST(SecurityPolicyTest, CannotBeReplacedFromPython) {
  OnEachInterpreter(StrictManager(), [](Interpreter& interp) {
    Error e = ErrorOf([&] { interp.run("import pyfleet\npyfleet.install_security_policy(allow_processes=True)\n"); });
    EXPECT_EQ(e.pythonType(), "builtins.RuntimeError");
    EXPECT_THAT(e.what(), HasSubstr("already installed"));
    ExpectAuditRefusal(ErrorOf([&] { interp.run("import subprocess\nsubprocess.run(['true'])\n"); }),
                       "subprocess.Popen");
    EXPECT_EQ(interp.eval("__import__('pyfleet').security_policy()['allowed_extern_modules']").toIValue(),
              c10::IValue(c10::ivalue::Tuple::create(
                  {c10::IValue("torch"), c10::IValue("collections"), c10::IValue("math"), c10::IValue("torchvision"),
                   c10::IValue("os"), c10::IValue("subprocess"), c10::IValue("socket")})));
  });
}

// ---- The security policy: extern allowlist --------------------------------------------

TEST(SecurityPolicyTest, ExternModulesOffTheAllowlistAreRefusedByName) {
  OnEachInterpreter(StrictManager(), [](Interpreter& interp) {
    EXPECT_EQ(ImportFromBehaviours(interp, "secmodels.uses_math").attr("hypot")({c10::IValue(3.0), c10::IValue(4.0)}).toIValue().toDouble(), 5.0);
    Error e = ErrorOf([&] { ImportFromBehaviours(interp, "secmodels.uses_json"); });
    EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(e.pythonType(), "pyfleet.ImportDenied");
    EXPECT_THAT(e.what(), HasSubstr("imports the extern module 'json', which is not on this interpreter's "
                                    "allowed_extern_modules (torch, collections, math, torchvision, os, "
                                    "subprocess, socket)"));
    ExpectUsable(interp);
  });
  // Without a policy the same module imports.
  Package p = OpenManager().loadPackage(Package_("behaviours"));
  Obj json_user = p.acquireSession().self.attr("import_module")({c10::IValue("secmodels.uses_json")});
  EXPECT_EQ(json_user.attr("dumps")({c10::IValue(int64_t{7})}).toIValue().toStringRef(), "7");
}

// ---- Real workloads under the policy ---------------------------------------------------

TEST(SecurityPolicyTest, TorchAndTorchvisionModelsLoadAndRunUnderThePolicy) {
  // Every interpreter imported torch under the policy (Interpreter::create installs it
  // first); torchvision is imported here, by the package, under it too.
  OnEachInterpreter(StrictManager(), [](Interpreter& interp) {
    EXPECT_TRUE(interp.eval("__import__('pyfleet').security_policy() is not None and "
                            "'torch' in __import__('sys').modules")
                    .toIValue()
                    .toBool());
  });
  for (const std::string& name : {std::string("model"), std::string("vision")}) {
    SCOPED_TRACE(name);
    const at::Tensor expected = ReferenceOutput(name);
    Package p = StrictManager().loadPackage(Package_(name), {DigestOf(name)});
    ReplicatedObj model = p.loadPickle("model", "model.pkl");
    c10::IValue example = p.acquireSession().self.attr("load_pickle")({c10::IValue("model"), c10::IValue("example.pkl")}).toIValue();
    for (int i = 0; i < 4; ++i) {  // both interpreters, whichever the balancer picks
      at::Tensor y = model({example}).toTensor();
      EXPECT_TRUE(at::allclose(y, expected, 1e-5, 1e-6));
    }
  }
}

// ---- Safe unpickling ------------------------------------------------------------------

TEST(SafeUnpicklingTest, StateDictLoadsAndEqualsTheUnsafeLoad) {
  for (InterpreterManager* manager : {&OpenManager(), &StrictManager()}) {
    Package p = manager->loadPackage(Package_("model"));
    ReplicatedObj safe = p.loadPickle("model", "state_dict.pkl", LoadOptions{.safe = true});
    ReplicatedObj plain = p.loadPickle("model", "state_dict.pkl");
    InterpreterSession s = manager->acquireOne();
    c10::impl::GenericDict a = safe.toObj(&s).toIValue().toGenericDict();
    c10::impl::GenericDict b = plain.toObj(&s).toIValue().toGenericDict();
    ASSERT_EQ(a.size(), 4u);  // net.0.weight, net.0.bias, net.2.weight, net.2.bias
    ASSERT_EQ(a.size(), b.size());
    for (const auto& kv : b) EXPECT_TRUE(at::equal(a.at(kv.key()).toTensor(), kv.value().toTensor())) << kv.key();
    // Tensors, a Parameter, a torch.Size, a dtype and plain containers load too.
    ReplicatedObj tensors = p.loadPickle("model", "tensors.pkl", LoadOptions{.safe = true});
    Obj t = tensors.toObj(&s);
    EXPECT_TRUE(at::equal(t.attr("__getitem__")({c10::IValue("ints")}).toIValue().toTensor(),
                          at::arange(6, at::kLong).reshape({2, 3})));
    EXPECT_EQ(t.attr("__getitem__")({c10::IValue("size")}).toIValue(),
              c10::IValue(c10::ivalue::Tuple::create({c10::IValue(int64_t{4}), c10::IValue(int64_t{5})})));
  }
}

TEST(SafeUnpicklingTest, RefusesOsSystemBeforeItRuns) {
  ::unlink(TheWorld().marker().c_str());
  Package p = OpenManager().loadPackage(Package_("model"));
  Error e = ErrorOf([&] { p.loadPickle("model", "evil.pkl", LoadOptions{.safe = true}); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(e.pythonType(), "pyfleet.GlobalDenied");
  EXPECT_THAT(e.what(), HasSubstr("global 'posix.system' is not allowed"));
  EXPECT_FALSE(Exists(TheWorld().marker()));
  // Under the strict policy even an UNSAFE load fails: posix is not an allowed extern.
  Package strict = StrictManager().loadPackage(Package_("model"));
  Error e2 = ErrorOf([&] { strict.loadPickle("model", "evil.pkl"); });
  EXPECT_EQ(e2.pythonType(), "pyfleet.ImportDenied");
  EXPECT_THAT(e2.what(), HasSubstr("'posix'"));
  EXPECT_FALSE(Exists(TheWorld().marker()));
  OnEachInterpreter(StrictManager(), [](Interpreter& interp) { ExpectUsable(interp); });
}

TEST(SafeUnpicklingTest, RefusesAPackageClassUnlessAllowed) {
  static const at::Tensor expected = ReferenceOutput("model");
  Package p = StrictManager().loadPackage(Package_("model"));
  Error e = ErrorOf([&] { p.loadPickle("model", "model.pkl", LoadOptions{.safe = true}); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(e.pythonType(), "pyfleet.GlobalDenied");
  EXPECT_THAT(e.what(), HasSubstr("global 'secmodels.models.Mlp' is not allowed"));
  // Listing the class is not enough: its submodules' classes are globals too.
  Error e2 = ErrorOf([&] { p.loadPickle("model", "model.pkl", LoadOptions{.allowed_globals = {"secmodels.models.Mlp"}}); });
  EXPECT_THAT(e2.what(), HasSubstr("global 'torch.nn.modules.container.Sequential' is not allowed"));
  ReplicatedObj model =
      p.loadPickle("model", "model.pkl", LoadOptions{.allowed_globals = {"secmodels.models.Mlp", "torch.nn.modules.**"}});
  c10::IValue example = p.acquireSession().self.attr("load_pickle")({c10::IValue("model"), c10::IValue("example.pkl")}).toIValue();
  EXPECT_TRUE(at::allclose(model({example}).toTensor(), expected));
  OnEachInterpreter(StrictManager(), [](Interpreter& interp) { ExpectUsable(interp); });
}

TEST(SafeUnpicklingTest, BadAllowlistEntryIsInvalidArgument) {
  Package p = OpenManager().loadPackage(Package_("model"));
  Error e = ErrorOf([&] { p.loadPickle("model", "state_dict.pkl", LoadOptions{.allowed_globals = {"nodot"}}); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(e.what(), HasSubstr("'nodot' is not 'module.name'"));
}

}  // namespace
}  // namespace pyfleet

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  pyfleet::World& world = pyfleet::TheWorld();
  char dir[] = "/tmp/pyfleet-security-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return 2;
  world.dir = dir;
  world.listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (world.listen_fd < 0 || ::bind(world.listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(world.listen_fd, 16) != 0 ||
      ::getsockname(world.listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    perror("listener");
    return 2;
  }
  world.port = ntohs(addr.sin_port);
  // Read by the packages' modules through os.environ: set before any interpreter starts.
  ::setenv("PYFLEET_SECURITY_PORT", std::to_string(world.port).c_str(), 1);
  ::setenv("PYFLEET_SECURITY_MARKER", world.marker().c_str(), 1);
  ::setenv("PYFLEET_SECURITY_WRITE_PATH", world.write_path().c_str(), 1);
  int rc = RUN_ALL_TESTS();
  ::unlink(world.marker().c_str());
  ::unlink(world.write_path().c_str());
  ::rmdir(world.dir.c_str());
  return rc;
}
