// Tests of pyfleet::Interpreter on a pool of 2 interpreters (pool_main.cpp): isolation,
// errors, values, zero-copy tensors and concurrency.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <ATen/ATen.h>

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>

#include "tests/common/proc_maps.h"
#include "tests/interpreter/interpreter_test_env.h"
#include "pyfleet/platform.h"

namespace pyfleet {
namespace {

using ::testing::HasSubstr;
using testing::InterpreterPool;

Interpreter& I(int i) { return InterpreterPool::Get().at(i); }

TEST(InterpreterTest, GlobalIsInvisibleInOtherInterpreters) {
  I(0).run("isolation_marker = 'zero'\n");
  EXPECT_EQ(I(0).eval("isolation_marker").toString(), "zero");
  EXPECT_FALSE(I(1).eval("'isolation_marker' in globals()").toBool());
  try {
    I(1).eval("isolation_marker");
    FAIL() << "expected NameError";
  } catch (const Error& e) {
    EXPECT_EQ(e.pythonType(), "builtins.NameError");
  }
}

TEST(InterpreterTest, SysModulesAreDistinct) {
  I(0).run("import sys, colorsys\n");
  EXPECT_TRUE(I(0).eval("'colorsys' in sys.modules").toBool());
  EXPECT_FALSE(I(1).eval("__import__('sys').modules.get('colorsys') is not None").toBool());
  I(1).run("import sys\nsys.modules['pyfleet_only_in_one'] = object()\n");
  EXPECT_FALSE(I(0).eval("'pyfleet_only_in_one' in sys.modules").toBool());
}

// Each interpreter maps its own copy of torch._C and of libtorch_python (distinct
// inodes), while libtorch_cpu is mapped once.
TEST(InterpreterTest, EachInterpreterHasItsOwnTorchC) {
  std::set<uint64_t> torch_c, torch_python, torch_cpu;
  for (const testing::Mapping& m : testing::readMappings()) {
    const bool copy = m.path.find("/pyfleet-") != std::string::npos;  // in the loader's workspace
    if (copy && m.path.find("-_C" PYFLEET_PYTHON_EXT_SUFFIX) != std::string::npos) torch_c.insert(m.inode);  // i<ID>-e<n>-_C...
    if (copy && m.path.find("libtorch_python") != std::string::npos) torch_python.insert(m.inode);
    if (m.path.find("libtorch_cpu.so") != std::string::npos) torch_cpu.insert(m.inode);
  }
  const size_t interpreters = InterpreterPool::Get().size();
  EXPECT_EQ(torch_c.size(), interpreters);
  EXPECT_EQ(torch_python.size(), interpreters);
  EXPECT_EQ(torch_cpu.size(), 1u);
}

TEST(InterpreterTest, NativeExtensionStateIsPerInterpreter) {
  Obj bump0 = I(0).global("pyfleet_counter", "bump");
  Obj bump1 = I(1).global("pyfleet_counter", "bump");
  int64_t base0 = bump0().toInt();
  int64_t base1 = bump1().toInt();
  EXPECT_EQ(bump0().toInt(), base0 + 1);
  EXPECT_EQ(bump0().toInt(), base0 + 2);
  EXPECT_EQ(bump1().toInt(), base1 + 1);  // untouched by interpreter 0's bumps
}

TEST(InterpreterTest, PythonExceptionKeepsTypeMessageAndTraceback) {
  I(0).run(
      "class PyfleetTestError(Exception):\n"
      "    pass\n"
      "def inner():\n"
      "    raise PyfleetTestError('bad thing 17')\n"
      "def outer():\n"
      "    inner()\n",
      "<test-module>");
  try {
    I(0).global("__main__", "outer")();
    FAIL() << "expected an exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.pythonType(), "__main__.PyfleetTestError");
    EXPECT_EQ(e.status().code(), absl::StatusCode::kUnknown);
    EXPECT_THAT(std::string(e.status().message()), HasSubstr("bad thing 17"));
    EXPECT_THAT(e.traceback(), HasSubstr("Traceback (most recent call last)"));
    EXPECT_THAT(e.traceback(), HasSubstr("in outer"));
    EXPECT_THAT(e.traceback(), HasSubstr("in inner"));
    EXPECT_THAT(e.traceback(), HasSubstr("<test-module>\", line 4"));
    EXPECT_THAT(e.what(), HasSubstr("PyfleetTestError: [interpreter"));
  }
  EXPECT_EQ(I(0).eval("1 + 1").toInt(), 2);  // still usable
}

TEST(InterpreterTest, ExceptionCodesFollowTheExceptionType) {
  auto code_of = [](const char* expr) {
    try {
      I(1).eval(expr);
    } catch (const Error& e) {
      return e.status().code();
    }
    return absl::StatusCode::kOk;
  };
  EXPECT_EQ(code_of("__import__('no_such_module_pyfleet')"), absl::StatusCode::kNotFound);
  EXPECT_EQ(code_of("int('x')"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of("[][3]"), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(code_of("1/0"), absl::StatusCode::kUnknown);
}

TEST(InterpreterTest, SyntaxErrorAndSystemExitDoNotEndTheProcess) {
  try {
    I(0).run("def broken(:\n", "<broken-module>");
    FAIL() << "expected SyntaxError";
  } catch (const Error& e) {
    EXPECT_EQ(e.pythonType(), "builtins.SyntaxError");
    EXPECT_EQ(e.status().code(), absl::StatusCode::kUnknown);
    EXPECT_THAT(e.traceback(), HasSubstr("<broken-module>"));
  }
  try {
    I(0).run("raise SystemExit(3)\n");
    FAIL() << "expected SystemExit";
  } catch (const Error& e) {
    EXPECT_EQ(e.pythonType(), "builtins.SystemExit");
    EXPECT_EQ(std::string(e.status().message()), "[interpreter " + std::to_string(I(0).index()) + "] 3");
  }
  EXPECT_EQ(I(0).eval("40 + 2").toInt(), 42);
}

TEST(InterpreterTest, ExceptionInOneLeavesOthersWorking) {
  try {
    I(0).run("raise RuntimeError('only here')\n");
    FAIL() << "expected RuntimeError";
  } catch (const Error& e) {
    EXPECT_EQ(e.pythonType(), "builtins.RuntimeError");
    EXPECT_EQ(std::string(e.status().message()), "[interpreter " + std::to_string(I(0).index()) + "] only here");
  }
  EXPECT_EQ(I(1).eval("6 * 7").toInt(), 42);
  EXPECT_EQ(I(0).eval("6 * 7").toInt(), 42);
}

TEST(InterpreterTest, ValuesRoundTrip) {
  Obj identity = I(0).eval("lambda x: x");
  EXPECT_TRUE(identity.call({Value()}).toValue().isNone());
  EXPECT_EQ(identity({true}).toBool(), true);
  EXPECT_EQ(identity({int64_t{1} << 40}).toInt(), int64_t{1} << 40);
  EXPECT_DOUBLE_EQ(identity({2.5}).toDouble(), 2.5);
  EXPECT_EQ(identity({std::string("héllo")}).toString(), "héllo");
  EXPECT_EQ(identity.call({Bytes{std::string("a\0b", 3)}}).toValue().toBytes().data, std::string("a\0b", 3));
  Obj kw = I(0).eval("lambda a, b=0: a - b");
  EXPECT_EQ(kw.call({10}, {{"b", 3}}).toInt(), 7);
}

TEST(InterpreterTest, UnsupportedConversionNamesThePythonType) {
  try {
    I(0).eval("{'a': 1}").toValue();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(e.status().message()), HasSubstr("'dict'"));
  }
  try {
    I(0).eval("3").toValue().toString();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(e.status().message()), HasSubstr("expected a value of type str, got int"));
  }
}

TEST(InterpreterTest, ObjOfAnotherInterpreterIsRejected) {
  Obj f = I(0).eval("lambda x: x");
  Obj other = I(1).eval("object()");
  try {
    f({other});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    // Indexes follow creation order, which is concurrent: ask the objects.
    EXPECT_THAT(std::string(e.status().message()),
                HasSubstr("object of interpreter " + std::to_string(other.interpreterIndex()) +
                          " used with interpreter " + std::to_string(f.interpreterIndex())));
    EXPECT_NE(other.interpreterIndex(), f.interpreterIndex());
  }
}

TEST(InterpreterTest, TensorRoundTripIsZeroCopy) {
  at::Tensor t = at::arange(12, at::kFloat).reshape({3, 4});
  Obj identity = I(0).eval("lambda t: t");
  at::Tensor back = identity({t}).toTensor();
  EXPECT_EQ(back.data_ptr(), t.data_ptr());
  EXPECT_EQ(back.unsafeGetTensorImpl(), t.unsafeGetTensorImpl());
}

TEST(InterpreterTest, InPlaceOpInInterpreterIsSeenByHost) {
  at::Tensor t = at::ones({4});
  I(1).eval("lambda t: t.mul_(3)")({t});
  EXPECT_TRUE(at::equal(t, at::full({4}, 3.0)));
}

TEST(InterpreterTest, TensorSeenByAnotherInterpreterIsAliasedNotRejected) {
  at::Tensor t = at::zeros({8});
  Obj add0 = I(0).eval("lambda t: t.add_(1)");
  Obj add1 = I(1).eval("lambda t: t.add_(2)");
  add0({t});
  at::Tensor back1 = add1({t}).toTensor();  // tagged by interpreter 0 -> alias for 1
  EXPECT_EQ(back1.data_ptr(), t.data_ptr());
  EXPECT_TRUE(at::equal(t, at::full({8}, 3.0)));
  at::Tensor back0 = add0({t}).toTensor();
  EXPECT_EQ(back0.unsafeGetTensorImpl(), t.unsafeGetTensorImpl());
}

TEST(InterpreterTest, TensorMadeInInterpreterOutlivesPythonObject) {
  at::Tensor made;
  {
    Obj t = I(0).eval("__import__('torch').arange(5.0)");
    made = t.toTensor();
  }
  I(0).run("import gc\ngc.collect()\n");
  EXPECT_TRUE(at::equal(made, at::arange(5.0)));
}

TEST(InterpreterTest, InjectedModuleAndFrozenStubsAreImportable) {
  EXPECT_EQ(I(0).global("pyfleet_injected", "ANSWER").toInt(), 42);
  EXPECT_EQ(I(1).eval("__import__('_pyfleet_io').__spec__.origin").toString(), "frozen");
}

TEST(InterpreterTest, BrokenExtensionRaisesImportErrorNamingThePath) {
  try {
    I(0).run("import pyfleet_broken_ext\n");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.pythonType(), "builtins.ImportError");
    EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(std::string(e.status().message()), HasSubstr(PYFLEET_TEST_BINARY_DIR "/pyfleet_broken_ext"));
  }
  EXPECT_EQ(I(0).eval("2 ** 10").toInt(), 1024);
}

// Note [Huge-page arenas for pymalloc]: pyfleet carves an interpreter's pymalloc arenas
// from one range it advises MADV_HUGEPAGE. What pyfleet controls is the advice ("hg" in
// the VmFlags of the mapping holding a small object); whether the kernel then backs it
// with huge pages depends on the machine's THP settings, so that is only reported.
TEST(InterpreterTest, SmallObjectsLiveInArenasAdvisedForHugePages) {
  if (::access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0) {
    GTEST_SKIP() << "kernel without transparent huge pages: madvise(MADV_HUGEPAGE) fails, arenas use plain pages";
  }
  if (const char* allocator = std::getenv("PYFLEET_PYTHON_MALLOC"); allocator != nullptr &&
                                                                    std::string(allocator) == "malloc") {
    // Sanitizer runs (scripts/test-sanitizers) give interpreters CPython's malloc
    // allocator on purpose: no pymalloc, so no arenas (python_allocator_test covers it).
    GTEST_SKIP() << "PYFLEET_PYTHON_MALLOC=malloc: interpreters use CPython's malloc allocator, no arenas";
  }
  // 64 MB of small objects: pymalloc arenas, opened in 8 MiB steps of the range.
  I(0).run("_arena_probe = [(i, i + 1) for i in range(1000000)]\n");
  const std::vector<testing::Mapping> smaps = testing::readSmaps();
  std::set<uintptr_t> arena_mappings;
  uint64_t huge_kb = 0;  // over the mappings holding the probed objects
  for (const char* which : {"0", "500000", "-1"}) {
    // id() is the object's address in CPython; a 2-tuple (56 bytes) comes from pymalloc.
    const int64_t address = I(0).eval(std::string("id(_arena_probe[") + which + "])").toInt();
    const std::optional<testing::Mapping> m =
        testing::mappingContaining(smaps, reinterpret_cast<const void*>(address));
    ASSERT_TRUE(m.has_value()) << "no mapping holds the object at " << address;
    EXPECT_TRUE(m->hasVmFlag("hg")) << "_arena_probe[" << which << "] lies in a mapping without MADV_HUGEPAGE: "
                                    << std::hex << m->start << "-" << m->end << " " << m->perms;
    EXPECT_EQ(m->perms, "rw-p");
    EXPECT_EQ(m->path, "");  // anonymous
    if (arena_mappings.insert(m->start).second && m->kb.count("AnonHugePages")) huge_kb += m->kb.at("AnonHugePages");
  }
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes((std::istreambuf_iterator<char>(thp)), std::istreambuf_iterator<char>());
  if (!modes.empty() && modes.back() == '\n') modes.pop_back();
  std::printf("[   INFO   ] arena mapping: %llu kB on transparent huge pages (THP modes: %s)\n",
              static_cast<unsigned long long>(huge_kb), modes.c_str());
  RecordProperty("anon_huge_pages_kb", std::to_string(huge_kb));
  EXPECT_EQ(I(0).eval("len(_arena_probe)").toInt(), 1000000);
  I(0).run("del _arena_probe\n");
}

TEST(InterpreterTest, InterpreterCopiesListNoLibraryTheHostAlreadyHasGlobally) {
  // Note [Dependencies already in the global scope]: the host links LibTorch, so the
  // interpreter library copies drop libtorch*, libc10, libstdc++ ... from DT_NEEDED, and
  // an extension copy (which needs its interpreter copy) does not walk LibTorch's tree.
  I(0).run("import json\n");
  std::set<std::string> copies;
  for (const testing::Mapping& m : testing::readMappings()) {
    const std::string file = m.file();
    const std::string suffix = "-interpreter.so";
    if (m.deleted() && file.size() > suffix.size() &&
        file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0) {
      copies.insert(file);
    }
  }
  ASSERT_EQ(copies.size(), static_cast<size_t>(InterpreterPool::Get().size()));
  for (const std::string& path : copies) {
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);  // matched by name
    ASSERT_NE(handle, nullptr) << path;
    struct link_map* map = nullptr;
    ASSERT_EQ(::dlinfo(handle, RTLD_DI_LINKMAP, &map), 0);
    const char* strings = nullptr;
    for (const ElfW(Dyn)* d = map->l_ld; d->d_tag != DT_NULL; ++d) {
      if (d->d_tag == DT_STRTAB) strings = reinterpret_cast<const char*>(d->d_un.d_ptr);
    }
    ASSERT_NE(strings, nullptr);
    for (const ElfW(Dyn)* d = map->l_ld; d->d_tag != DT_NULL; ++d) {
      if (d->d_tag != DT_NEEDED) continue;
      const std::string needed = strings + d->d_un.d_val;
      EXPECT_EQ(needed.find("libtorch"), std::string::npos) << path << " needs " << needed;
      EXPECT_NE(needed, "libc10.so." PYFLEET_TORCH_SOVERSION) << path;
      EXPECT_NE(needed, "libstdc++.so.6") << path;
    }
    ::dlclose(handle);
  }
}

TEST(InterpreterTest, ConcurrentCallsOnOwnInterpretersAreCorrect) {
  constexpr int kCalls = 3000;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      Obj f = I(i).eval("lambda t, k: (t * k).sum()");
      at::Tensor x = at::ones({16});
      for (int k = 0; k < kCalls; ++k) {
        if (f({x, k}).toTensor().item<float>() != 16.0f * k) wrong.fetch_add(1);
      }
      I(i).detachThread();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(InterpreterTest, ThreadsSharingOneInterpreterSerializeCorrectly) {
  I(1).run("shared_counter = 0\ndef incr():\n    global shared_counter\n    shared_counter += 1\n");
  Obj incr = I(1).global("__main__", "incr");
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 1000; ++k) incr();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(I(1).eval("shared_counter").toInt(), 4000);
}

}  // namespace
}  // namespace pyfleet
