// File: package_file_test.cpp
//
// A package file changing on disk while it is served (threads calling the model on both
// interpreters of a manager throughout). What pyfleet guarantees (Note [Package files
// may change on disk] in loader/base/mapped_file.h): a Package serves the bytes the file
// had when it was opened, whatever happens to the file afterwards:
//  - deleted, or renamed over (the usual deploy): safe by construction, the open file
//    keeps the old inode; loading the path again gives the new file;
//  - truncated, or rewritten in place (open O_TRUNC and write, or pwrite over it): the
//    Package serves from its own sealed in-memory copy, so no SIGBUS and no changed
//    weights, in the interpreter that had loaded the model before the change and in one
//    that loads it afterwards; loading the path again opens the new contents (and fails
//    cleanly if they are not a package).
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pyfleet/pyfleet.h"
#include "tests/faults/fault_test_util.h"

namespace pyfleet {
namespace {

using testing::ErrorOf;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

class PackageFileFaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { manager_ = new InterpreterManager(2); }
  static void TearDownTestSuite() {
    delete manager_;
    manager_ = nullptr;
  }

  void SetUp() override {
    char dir[] = "/tmp/pyfleet-fault-package-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/model.pt";
    WriteFile(path_, ReadFile(PYFLEET_HOST_PACKAGES "/mlp.pt"));
    package_ = manager_->loadPackage(path_);
    model_ = package_.loadPickle("model", "model.pkl");  // loaded in one interpreter now
    expected_ = model_({x_}).toTensor();
  }

  void TearDown() override {
    model_ = ReplicatedObj();
    package_ = Package::open(PYFLEET_HOST_PACKAGES "/mlp.pt");  // drops the test's archive
    std::remove(path_.c_str());
    std::remove((path_ + ".new").c_str());
    ::rmdir(dir_.c_str());
  }

  // Calls the model from two threads before, while and after `change` happens to the
  // file, and then once on every interpreter (one of them loads its copy only now,
  // from the archive, after the change); every result must equal the one before.
  void ServeThrough(const std::function<void()>& change) {
    std::atomic<bool> stop{false};
    std::atomic<int> calls{0};
    std::mutex mu;
    std::vector<std::string> failures;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&] {
        while (!stop.load()) {
          try {
            if (!model_({x_}).toTensor().equal(expected_)) {
              std::lock_guard<std::mutex> lock(mu);
              failures.push_back("the model's result changed");
            }
            ++calls;
          } catch (const Error& e) {
            std::lock_guard<std::mutex> lock(mu);
            failures.push_back(e.status().ToString());
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    change();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop = true;
    for (std::thread& t : threads) t.join();
    for (const std::string& f : failures) ADD_FAILURE() << f;
    EXPECT_GT(calls.load(), 0);
    for (const Interpreter& interp : manager_->allInstances()) {
      InterpreterSession session = model_.acquireSession(&interp);
      EXPECT_TRUE(session.self({x_}).toIValue().toTensor().equal(expected_)) << "interpreter " << interp.index();
    }
    // Other records of the package still load, from the bytes it was opened with.
    ReplicatedObj example = package_.loadPickle("model", "example.pkl");
    EXPECT_EQ(model_.materializations(), manager_->size());
  }

  static InterpreterManager* manager_;
  std::string dir_, path_;
  Package package_ = Package::open(PYFLEET_HOST_PACKAGES "/mlp.pt");
  ReplicatedObj model_;
  const at::Tensor x_ = at::linspace(-1, 1, 3 * 16).reshape({3, 16});
  at::Tensor expected_;
};
InterpreterManager* PackageFileFaultTest::manager_ = nullptr;

TEST_F(PackageFileFaultTest, DeletedFileKeepsServing) {
  ServeThrough([&] { ASSERT_EQ(::unlink(path_.c_str()), 0); });
  Error e = ErrorOf([&] { manager_->loadPackage(path_); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PackageFileFaultTest, RenamedOverKeepsServingTheOldAndReloadGivesTheNew) {
  ServeThrough([&] {
    WriteFile(path_ + ".new", ReadFile(PYFLEET_HOST_PACKAGES "/echo.pt"));
    ASSERT_EQ(::rename((path_ + ".new").c_str(), path_.c_str()), 0);
  });
  ReplicatedObj echo = manager_->loadPackage(path_).loadPickle("model", "model.pkl");
  EXPECT_EQ(echo({c10::IValue(7)}).toInt(), 7);
}

TEST_F(PackageFileFaultTest, TruncatedFileKeepsServing) {
  ServeThrough([&] { ASSERT_EQ(::truncate(path_.c_str(), 0), 0); });
  Error e = ErrorOf([&] { manager_->loadPackage(path_); });  // an empty file is no package
  EXPECT_NE(e.status().code(), absl::StatusCode::kOk);
  EXPECT_THAT(std::string(e.status().message()), ::testing::HasSubstr(path_));
}

TEST_F(PackageFileFaultTest, TruncatedToHalfKeepsServing) {
  const off_t size = static_cast<off_t>(ReadFile(path_).size());
  ServeThrough([&] { ASSERT_EQ(::truncate(path_.c_str(), size / 2), 0); });
}

TEST_F(PackageFileFaultTest, RewrittenWithAnotherPackageKeepsServingTheOld) {
  // What `cp other.pt model.pt` does: open with O_TRUNC, write the new bytes.
  ServeThrough([&] { WriteFile(path_, ReadFile(PYFLEET_HOST_PACKAGES "/echo.pt")); });
  ReplicatedObj echo = manager_->loadPackage(path_).loadPickle("model", "model.pkl");
  EXPECT_EQ(echo({c10::IValue(8)}).toInt(), 8);
}

TEST_F(PackageFileFaultTest, OverwrittenInPlaceKeepsServingTheOldBytes) {
  // Every byte replaced without changing the size (pwrite over the open file): a
  // mapping of the file would show the new bytes in the weights it serves.
  ServeThrough([&] {
    const int fd = ::open(path_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    struct stat st;
    ASSERT_EQ(::fstat(fd, &st), 0);
    const std::string garbage(static_cast<size_t>(st.st_size), '\x5a');
    ASSERT_EQ(::pwrite(fd, garbage.data(), garbage.size(), 0), static_cast<ssize_t>(garbage.size()));
    ::close(fd);
  });
}

}  // namespace
}  // namespace pyfleet
