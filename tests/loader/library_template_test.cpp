// Tests for loader/library_template.h: an instance is byte-identical to a fresh patch
// with the same id (Note [Template placeholders]).
#include "loader/library_template.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loader/elf_file.h"
#include "loader/library_copy.h"
#include "loader_test_util.h"
#include "pyfleet/platform.h"

namespace pyfleet::internal {
namespace {

using ::pyfleet::internal::testing::kStdlibExtension;
using ::pyfleet::internal::testing::kLibtorchPython;
using ::pyfleet::internal::testing::kLibz;
using ::pyfleet::internal::testing::readTestFile;
using ::testing::HasSubstr;

constexpr absl::string_view kP = LibraryTemplate::kIdPlaceholder;

// The edits the loader makes for a Python-dependent library, with placeholders.
ElfEdits dependencyEdits(const std::string& needed_to_replace) {
  ElfEdits edits;
  edits.add_needed = {absl::StrCat("/tmp/pyfleet-Ab12Cd/i", kP, "-interpreter.so")};
  if (!needed_to_replace.empty()) {
    edits.replace_needed = {
        {needed_to_replace, absl::StrCat("/tmp/pyfleet-Ab12Cd/i", kP, "-d0002-dep.so")}};
  }
  edits.soname = absl::StrCat("/tmp/pyfleet-Ab12Cd/i", kP, "-d0001-lib.so");
  edits.demote_unique = true;
  return edits;
}

ElfEdits withIds(const ElfEdits& edits, int id) {
  ElfEdits out = edits;
  for (std::string& s : out.add_needed) s = *LibraryTemplate::withId(s, id);
  for (auto& [from, to] : out.replace_needed) to = *LibraryTemplate::withId(to, id);
  if (out.soname) out.soname = *LibraryTemplate::withId(*out.soname, id);
  return out;
}

class LibraryTemplateInstanceTest
    : public ::testing::TestWithParam<std::tuple<std::string, std::string, int>> {};

TEST_P(LibraryTemplateInstanceTest, InstanceEqualsFreshPatchWithThatId) {
  const auto& [path, needed_to_replace, id] = GetParam();
  const std::string original = readTestFile(path);
  const ElfEdits edits = dependencyEdits(needed_to_replace);
  absl::StatusOr<LibraryTemplate> tmpl = LibraryTemplate::create(original, path, edits);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  // interpreter DT_NEEDED + soname (+ replaced DT_NEEDED)
  EXPECT_EQ(tmpl->placeholderOffsets().size(), needed_to_replace.empty() ? 2u : 3u);

  absl::StatusOr<std::string> instance = tmpl->instantiate(id);
  ASSERT_TRUE(instance.ok()) << instance.status();
  absl::StatusOr<EditedImage> fresh = editElf(original, path, withIds(edits, id));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_TRUE(*instance == fresh->image) << "instance differs from a fresh patch";
  // writeInstance() (how copies are written to files) yields the same bytes.
  std::string written;
  absl::Status status = tmpl->writeInstance(id, [&](absl::string_view bytes, uint64_t offset) {
    if (written.size() < offset + bytes.size()) written.resize(offset + bytes.size());
    written.replace(offset, bytes.size(), bytes.data(), bytes.size());
    return absl::OkStatus();
  });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(written == *instance) << "writeInstance differs from instantiate";

  absl::StatusOr<ElfFile> parsed = ElfFile::parse(*instance, path);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->soname(), *LibraryTemplate::withId(*edits.soname, id));
  EXPECT_EQ(parsed->needed().front(), *LibraryTemplate::withId(edits.add_needed[0], id));
  EXPECT_EQ(parsed->uniqueSymbolCount(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    RealLibraries, LibraryTemplateInstanceTest,
    ::testing::Values(std::make_tuple(std::string(kLibz), std::string("libc.so.6"), 0),
                      std::make_tuple(std::string(kLibz), std::string(), 12345678),
                      std::make_tuple(std::string(kStdlibExtension), std::string(), 7),
                      std::make_tuple(std::string(kLibtorchPython), std::string("libshm.so." PYFLEET_TORCH_SOVERSION), 1),
                      std::make_tuple(std::string(kLibtorchPython), std::string(), 99999999)));

TEST(LibraryTemplateTest, FormatsFixedWidthIds) {
  EXPECT_EQ(*LibraryTemplate::formatId(0), "00000000");
  EXPECT_EQ(*LibraryTemplate::formatId(42), "00000042");
  EXPECT_EQ(*LibraryTemplate::withId(absl::StrCat("a", kP, "b", kP), 3), "a00000003b00000003");
  EXPECT_EQ(LibraryTemplate::formatId(-1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(LibraryTemplate::formatId(100000000).status().message()),
              HasSubstr("interpreter id 100000000 is outside [0, 99999999]"));
}

TEST(LibraryTemplateTest, RejectsOutOfRangeInstances) {
  absl::StatusOr<LibraryTemplate> tmpl =
      LibraryTemplate::create(readTestFile(kLibz), "libz.so.1", dependencyEdits(""));
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  EXPECT_EQ(tmpl->instantiate(-5).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LibraryTemplateTest, LibraryStringsAreNeverPlaceholders) {
  // Only strings the edit added are instantiated, even if the library's own table had
  // the placeholder text.
  ElfEdits edits;
  edits.soname = "no-placeholder.so";
  absl::StatusOr<LibraryTemplate> tmpl =
      LibraryTemplate::create(readTestFile(kLibz), "libz.so.1", edits);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  EXPECT_TRUE(tmpl->placeholderOffsets().empty());
  EXPECT_EQ(*tmpl->instantiate(3), tmpl->image());
}

// Prints how long patching libtorch_python once and making one instance take (for the
// record; nothing is asserted about time). An instance is measured both as an in-memory
// copy (instantiate) and as the loader makes it: written straight into a file.
TEST(LibraryTemplateTest, TemplateKeepingOnlyChangesWritesTheSameInstance) {
  // libtorch_python with the loader's edits (one relayout, 58 demoted symbols) and a few
  // scattered byte changes standing in for relocations bound in the template.
  const std::string original = readTestFile(kLibtorchPython);
  std::string image = original;
  for (uint64_t at : {uint64_t{0x2000}, uint64_t{0x2010}, uint64_t{0x100000}}) image[at] ^= 0x5a;
  absl::StatusOr<LibraryTemplate> tmpl = LibraryTemplate::create(image, kLibtorchPython, dependencyEdits(""));
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  absl::StatusOr<std::string> expected = tmpl->instantiate(7);
  ASSERT_TRUE(expected.ok()) << expected.status();

  ASSERT_TRUE(tmpl->keepOnlyChanges(original).ok());
  EXPECT_TRUE(tmpl->keepsOnlyChanges());
  EXPECT_TRUE(tmpl->image().empty());
  EXPECT_LT(tmpl->heldBytes(), uint64_t{2} << 20) << "of " << original.size();
  EXPECT_EQ(tmpl->instantiate(7).status().code(), absl::StatusCode::kFailedPrecondition);

  auto writeInto = [](std::string& out) {
    return [&out](absl::string_view bytes, uint64_t offset) {
      if (out.size() < offset + bytes.size()) out.resize(offset + bytes.size());  // zero-filled, like a file
      out.replace(offset, bytes.size(), bytes.data(), bytes.size());
      return absl::OkStatus();
    };
  };
  std::string written;
  absl::Status status = tmpl->writeInstance(7, writeInto(written), [&] {
    written.assign(original);
    return absl::OkStatus();
  });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(written == *expected) << "instance from the changes differs from the full template's";
  // Without a way to copy the original it refuses instead of writing a partial file.
  std::string partial;
  EXPECT_EQ(tmpl->writeInstance(7, writeInto(partial)).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(LibraryTemplateTest, KeepOnlyChangesRefusesALongerOriginal) {
  const std::string original = readTestFile(kLibz);
  absl::StatusOr<LibraryTemplate> tmpl = LibraryTemplate::create(original, kLibz, ElfEdits{});
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  EXPECT_EQ(tmpl->keepOnlyChanges(original + "more").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(tmpl->keepsOnlyChanges());
}

TEST(LibraryTemplateTest, LibtorchPythonTemplateCost) {
  std::string original = readTestFile(kLibtorchPython);
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<LibraryTemplate> tmpl =
      LibraryTemplate::create(std::move(original), kLibtorchPython, dependencyEdits(""));
  const auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  EXPECT_EQ(tmpl->demoted(), testing::kLibtorchPythonUniqueSymbols);
  testing::ScratchDir scratch;
  const std::string path = scratch.pathOf("instance.so");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  const auto t2 = std::chrono::steady_clock::now();
  absl::Status written = tmpl->writeInstance(5, [&](absl::string_view bytes, uint64_t offset) {
    return writeFileAt(fd, bytes, offset, path);
  });
  const auto t3 = std::chrono::steady_clock::now();
  ::close(fd);
  ASSERT_TRUE(written.ok()) << written;
  absl::StatusOr<std::string> instance = tmpl->instantiate(5);
  const auto t4 = std::chrono::steady_clock::now();
  ASSERT_TRUE(instance.ok()) << instance.status();
  EXPECT_EQ(readTestFile(path), *instance);
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  std::cout << "libtorch_python.so.1.13 (" << instance->size() << " bytes): template "
            << ms(t0, t1) << " ms; one instance: written to a file " << ms(t2, t3)
            << " ms, copied in memory " << ms(t3, t4) << " ms\n";
  RecordProperty("template_ms", std::to_string(ms(t0, t1)));
  RecordProperty("instance_to_file_ms", std::to_string(ms(t2, t3)));
}

}  // namespace
}  // namespace pyfleet::internal
