// Item 9 of issue 7: the warning every extra interpreter's libtorch_python copy used to
// print ("Overriding a previously registered kernel ... aten::get_gradients", preceded
// once by glog's "Logging before InitGoogleLogging()") is gone, and only it: other c10
// warnings, even ones emitted while an extension loads, and torch's Python warnings
// still print; PYFLEET_SHOW_TORCH_REGISTRATION_WARNINGS=1 brings it back. Its own binary:
// it captures the process's stderr (fd 2) and needs interpreters made in it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pyfleet/platform.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pyfleet/interpreter.h"

namespace pyfleet {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Redirects fd 2 into a temporary file while alive; text() reads what was written.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    saved_ = ::dup(2);
    file_ = std::tmpfile();
    ::dup2(::fileno(file_), 2);
  }
  ~StderrCapture() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    std::fclose(file_);
  }
  std::string text() {
    std::fflush(stderr);
    std::string out;
    std::rewind(file_);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), file_)) > 0) out.append(buf, n);
    std::fseek(file_, 0, SEEK_END);
    return out;
  }

 private:
  int saved_ = -1;
  std::FILE* file_ = nullptr;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(TorchWarningsTest, OnlyTheDuplicateGetGradientsRegistrationIsSilenced) {
  ::unsetenv("PYFLEET_SHOW_TORCH_REGISTRATION_WARNINGS");
  auto libs = NativeLibraries::create();
  InterpreterConfig config;
  config.extra_sys_path = {PYFLEET_TEST_BINARY_DIR};
  std::vector<std::unique_ptr<Interpreter>> pool;
  std::string err;
  {
    StderrCapture capture;
    for (int i = 0; i < 2; ++i) {
      pool.push_back(Interpreter::create(libs, config));
      pool.back()->run("import torch\n");
    }
    err = capture.text();
  }
  EXPECT_THAT(err, Not(HasSubstr("aten::get_gradients"))) << err;
  EXPECT_THAT(err, Not(HasSubstr("Overriding a previously registered kernel"))) << err;
  EXPECT_THAT(err, Not(HasSubstr("Logging before InitGoogleLogging()"))) << err;

  // Other c10 warnings, also while an extension copy loads (inside the filter), print.
  {
    StderrCapture capture;
    for (auto& interp : pool) interp->run("import pyfleet_warn_ext\n");
    err = capture.text();
  }
  EXPECT_EQ(Count(err, "pyfleet_warn_ext: an ordinary c10 warning"), 2u) << err;
  EXPECT_EQ(Count(err, "operator: pyfleet_test::fake(int x) -> int"), 2u) << err;
  EXPECT_THAT(err, Not(HasSubstr("aten::get_gradients"))) << err;

  // torch's C++ warnings raised inside a Python call still print (as UserWarning).
  {
    StderrCapture capture;
    pool[1]->run("import sys, torch, warnings\nwarnings.simplefilter('always')\n"
                 "torch.add(torch.ones(3), 1, out=torch.empty(2))\nsys.stderr.flush()\n");
    err = capture.text();
  }
  EXPECT_THAT(err, HasSubstr("UserWarning")) << err;
  EXPECT_THAT(err, HasSubstr("was resized since it had shape [2]")) << err;

  // PYFLEET_SHOW_TORCH_REGISTRATION_WARNINGS=1 shows it again.
  {
    StderrCapture capture;
    ::setenv("PYFLEET_SHOW_TORCH_REGISTRATION_WARNINGS", "1", 1);
    pool.push_back(Interpreter::create(libs, config));
    pool.back()->run("import torch\n");
    ::unsetenv("PYFLEET_SHOW_TORCH_REGISTRATION_WARNINGS");
    err = capture.text();
  }
  if (std::string(PYFLEET_TORCH_SOVERSION) == "1.13") {
    EXPECT_THAT(err, HasSubstr("Overriding a previously registered kernel")) << err;
    EXPECT_THAT(err, HasSubstr("operator: aten::get_gradients(int context_id)")) << err;
  } else {
    // torch 2.x says it once per process (TORCH_WARN_ONCE: "Warning only once for all
    // operators"), and the second interpreter's copy has already said it, to the filter.
    EXPECT_THAT(err, Not(HasSubstr("Overriding a previously registered kernel"))) << err;
  }
  for (auto& interp : pool) interp.release();  // ARCHITECTURE.md §11
}

}  // namespace
}  // namespace pyfleet
