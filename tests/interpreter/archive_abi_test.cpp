// The PyfleetArchive callbacks (interpreter/archive/archive_abi.cpp) are called by the
// importer from inside CPython frames, so none may let a C++ exception out (item 3 of
// issue 7): their types are noexcept, and a failure inside them, std::bad_alloc
// included, comes back as a return value. This binary replaces the global operator new
// so that a test can make allocations fail on its own thread.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <type_traits>

#include "interpreter/archive/archive_abi.h"
#include "interpreter/archive/package_archive.h"
#include "loader/base/pyfleet_status.h"

namespace {
thread_local bool t_fail_allocations = false;
}  // namespace

void* operator new(std::size_t size) {
  if (t_fail_allocations) throw std::bad_alloc();
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace pyfleet::internal {
namespace {

using ::testing::HasSubstr;

// Every callback type of the archive table is noexcept in C++ (PYFLEET_NOEXCEPT), so a
// function that may throw cannot be stored in it.
static_assert(std::is_nothrow_invocable_v<decltype(PyfleetArchive::retain), void*>);
static_assert(std::is_nothrow_invocable_v<decltype(PyfleetArchive::release), void*>);
static_assert(std::is_nothrow_invocable_v<decltype(PyfleetArchive::path), void*>);
static_assert(std::is_nothrow_invocable_v<decltype(PyfleetArchive::record_count), void*>);
static_assert(std::is_nothrow_invocable_v<decltype(PyfleetArchive::record_name), void*, size_t>);
static_assert(std::is_nothrow_invocable_v<decltype(PyfleetArchive::find), void*, const char*>);
static_assert(std::is_nothrow_invocable_v<decltype(PyfleetArchive::read), void*, size_t, PyfleetRecordView*>);
static_assert(std::is_nothrow_invocable_v<decltype(PyfleetRecordView::release), void*>);
static_assert(std::is_nothrow_invocable_v<decltype(PyfleetExtensionLoader::load), void*, const char*, char**>);

class ArchiveAbiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("pyfleet_archive_abi_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ / "m");
    std::ofstream(dir_ / "m" / "x.py") << "X = 1\n";
    auto archive = PackageArchive::OpenDirectory(dir_.string());
    ASSERT_TRUE(archive.ok()) << archive.status();
    abi_ = MakeArchiveAbi(*std::move(archive));
  }
  void TearDown() override {
    if (abi_.ctx != nullptr) abi_.release(abi_.ctx);
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  PyfleetArchive abi_{};
};

TEST_F(ArchiveAbiTest, ReadReportsOutOfMemoryInsteadOfThrowing) {
  const int64_t index = abi_.find(abi_.ctx, "m/x.py");
  ASSERT_GE(index, 0);
  PyfleetRecordView view{};
  PyfleetStatus* status = nullptr;
  t_fail_allocations = true;
  try {
    status = abi_.read(abi_.ctx, static_cast<size_t>(index), &view);
  } catch (...) {
    t_fail_allocations = false;
    FAIL() << "a C++ exception escaped PyfleetArchive::read";
  }
  t_fail_allocations = false;
  ASSERT_NE(status, nullptr);
  EXPECT_EQ(status->code, PYFLEET_RESOURCE_EXHAUSTED);
  EXPECT_THAT(status->message, HasSubstr("out of memory"));
  FreePyfleetStatus(status);

  // And with memory, the same read works.
  status = abi_.read(abi_.ctx, static_cast<size_t>(index), &view);
  ASSERT_EQ(status, nullptr) << status->message;
  EXPECT_EQ(std::string(static_cast<const char*>(view.data), view.size), "X = 1\n");
  view.release(view.owner);
}

TEST_F(ArchiveAbiTest, FindAndRecordNameFailByReturnValue) {
  EXPECT_EQ(abi_.find(abi_.ctx, nullptr), -1);
  EXPECT_EQ(abi_.find(abi_.ctx, "no/such/record"), -1);
  EXPECT_EQ(abi_.record_name(abi_.ctx, abi_.record_count(abi_.ctx)), nullptr);
  PyfleetRecordView view{};
  PyfleetStatus* status = abi_.read(abi_.ctx, 99, &view);
  ASSERT_NE(status, nullptr);
  EXPECT_EQ(status->code, PYFLEET_OUT_OF_RANGE);
  FreePyfleetStatus(status);
}

}  // namespace
}  // namespace pyfleet::internal
