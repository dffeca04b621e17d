// Tests for runtime/archive: PackageArchive (ZIP, bytes, directory) and its C ABI
// wrapper. small.pt and script.pt are tests/fixtures' stock packages (torch's
// PackageExporter, gen_packages.py); make_archive_fixtures.py rewrites small.pt into
// other layouts and into archives with one defect each (PYFLEET_ARCHIVE_FIXTURES).
#include "interpreter/archive/package_archive.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pyfleet/platform.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "interpreter/archive/archive_abi.h"

namespace pyfleet::internal {
namespace {

using ::testing::HasSubstr;

// A variant or expectation written by make_archive_fixtures.py.
std::string Fixture(const std::string& name) {
  return std::string(PYFLEET_ARCHIVE_FIXTURES) + "/" + name;
}

// A stock package of tests/fixtures.
std::string Stock(const std::string& name) { return std::string(PYFLEET_FIXTURES_DIR) + "/" + name; }

const std::string kSmall = Stock("small.pt");
// fixture_spec.HELLO_TEXT, small.pt's pf_demo/data/hello.txt (59 bytes of UTF-8).
constexpr char kHelloText[] =
    "Hello from a package \u2014 gr\u00fc\u00dfe, \u4f60\u597d, \U0001F600\nsecond line\n";
constexpr char kText[] = "pf_demo/data/hello.txt";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(Slurp(path));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> Names(const PackageArchive& a) {
  std::vector<std::string> out;
  for (size_t i = 0; i < a.recordCount(); ++i) out.push_back(a.record(i).name);
  return out;
}

std::shared_ptr<PackageArchive> MustOpen(const std::string& path) {
  absl::StatusOr<std::shared_ptr<PackageArchive>> a = PackageArchive::Open(path);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? *a : nullptr;
}

std::string ReadText(const PackageArchive& a, const std::string& name) {
  absl::StatusOr<RecordData> r = a.read(name);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::string(r->view()) : "";
}

TEST(PackageArchiveTest, ListsRecordsLikePyTorchFileReader) {
  for (const std::string base : {"small", "script", "zip64", "deflated"}) {
    auto a = MustOpen(base == "small" || base == "script" ? Stock(base + ".pt") : Fixture(base + ".pt"));
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(Names(*a), Lines(Fixture(std::string(base) + ".records"))) << base;
    EXPECT_EQ(a->kind(), PackageArchive::Kind::kZip);
    EXPECT_EQ(a->version(), 6u);
  }
}

TEST(PackageArchiveTest, StoredRecordIsAlignedViewOfTheMapping) {
  auto a = MustOpen(kSmall);
  ASSERT_NE(a, nullptr);
  absl::StatusOr<RecordData> r = a->read(".data/0.storage");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->aliasesArchive());
  EXPECT_TRUE(a->mapping()->contains(r->data(), r->size()));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r->data()) % 64, 0u);
  ASSERT_EQ(r->size(), 16 * sizeof(float));
  const float* w = reinterpret_cast<const float*>(r->data());
  for (int i = 0; i < 16; ++i) EXPECT_EQ(w[i], static_cast<float>(i));
  // Reading again gives the very same bytes (no copy).
  absl::StatusOr<RecordData> again = a->read(".data/0.storage");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->data(), r->data());
}

TEST(PackageArchiveTest, ViewOutlivesArchive) {
  RecordData r;
  {
    auto a = MustOpen(kSmall);
    ASSERT_NE(a, nullptr);
    absl::StatusOr<RecordData> rr = a->read(kText);
    ASSERT_TRUE(rr.ok());
    r = *rr;
  }
  EXPECT_EQ(r.view(), kHelloText);
}

TEST(PackageArchiveTest, WritesThroughAViewNeverReachTheFile) {
  const std::string before = Slurp(kSmall);
  {
    auto a = MustOpen(kSmall);
    ASSERT_NE(a, nullptr);
    absl::StatusOr<RecordData> r = a->read(".data/0.storage");
    ASSERT_TRUE(r.ok());
    r->data()[0] ^= 0xff;  // copy-on-write: allowed, private to this process
    absl::StatusOr<RecordData> again = a->read(".data/0.storage");
    ASSERT_TRUE(again.ok()) << "CRC is verified once, before the first view";
    EXPECT_EQ(again->data()[0], r->data()[0]);  // the mutation is shared in-process
  }
  EXPECT_EQ(Slurp(kSmall), before);
}

TEST(PackageArchiveTest, DeflatedTorchScriptRecordsInflate) {
  auto a = MustOpen(Stock("script.pt"));
  ASSERT_NE(a, nullptr);
  std::optional<size_t> i = a->find(".data/ts_code/code/__torch__.py");
  ASSERT_TRUE(i.has_value());
  EXPECT_EQ(a->record(*i).method, RecordMethod::kDeflated);
  absl::StatusOr<RecordData> r = a->read(*i);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->aliasesArchive());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r->data()) % 64, 0u);
  EXPECT_EQ(std::string(r->view()), Slurp(Fixture("script.torch_py")));
}

class SameContentTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SameContentTest, MatchesTheStockPackage) {
  auto ref = MustOpen(kSmall);
  auto a = MustOpen(Fixture(GetParam()));
  ASSERT_NE(ref, nullptr);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(Names(*a), Names(*ref));
  for (size_t i = 0; i < ref->recordCount(); ++i) {
    EXPECT_EQ(ReadText(*a, ref->record(i).name), ReadText(*ref, ref->record(i).name))
        << ref->record(i).name;
  }
}

// Stored (torch's layout), everything deflated, and ZIP64 headers throughout.
INSTANTIATE_TEST_SUITE_P(Layouts, SameContentTest,
                         ::testing::Values("rewritten.pt", "deflated.pt", "zip64.pt"));

TEST(PackageArchiveTest, OpenBytesKeepsAlignmentAndContent) {
  std::string bytes = Slurp(kSmall);
  absl::StatusOr<std::shared_ptr<PackageArchive>> a =
      PackageArchive::OpenBytes(bytes.data(), bytes.size());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->path(), "<binary>");
  absl::StatusOr<RecordData> r = (*a)->read(".data/0.storage");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->aliasesArchive());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r->data()) % 64, 0u);
  EXPECT_EQ(ReadText(**a, kText), kHelloText);
}

TEST(PackageArchiveTest, DirectoryListsVisibleFilesAndFindsHiddenOnes) {
  absl::StatusOr<std::shared_ptr<PackageArchive>> a =
      PackageArchive::OpenDirectory(Fixture("unzipped/pkg"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->kind(), PackageArchive::Kind::kDirectory);
  std::vector<std::string> names = Names(**a);
  // Visible records first (glob order), then the hidden .data ones: the same records as
  // the ZIP, each kind in its own order.
  std::vector<std::string> zip_names = Lines(Fixture("small.records"));
  const size_t visible = std::count_if(zip_names.begin(), zip_names.end(),
                                       [](const std::string& n) { return n[0] != '.'; });
  // pf_demo/{data/hello.txt,data/tensors.pkl,data/point.pkl,util/maths.py,models.py},
  // and from torch 2.x's exporter on, a top-level "byteorder".
  ASSERT_EQ(visible, std::string(PYFLEET_TORCH_SOVERSION) == "1.13" ? 5u : 6u);
  ASSERT_EQ(names.size(), zip_names.size());
  size_t first_hidden = 0;
  while (first_hidden < names.size() && names[first_hidden][0] != '.') ++first_hidden;
  EXPECT_EQ(first_hidden, visible);
  for (size_t i = first_hidden; i < names.size(); ++i) EXPECT_EQ(names[i][0], '.') << names[i];
  std::sort(names.begin(), names.end());
  std::sort(zip_names.begin(), zip_names.end());
  EXPECT_EQ(names, zip_names);
  EXPECT_EQ(ReadText(**a, kText), kHelloText);
  EXPECT_EQ(ReadText(**a, ".data/version"), "6\n");
  absl::StatusOr<RecordData> missing = (*a)->read("res/nope.txt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("No such file or directory: '" + Fixture("unzipped/pkg") + "/res/nope.txt'"));
}

TEST(PackageArchiveTest, MissingRecordUsesTorchText) {
  auto a = MustOpen(Fixture("no_storage.pt"));
  ASSERT_NE(a, nullptr);
  absl::StatusOr<RecordData> r = a->read(".data/0.storage");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            "PytorchStreamReader failed locating file .data/0.storage: file not found");
  EXPECT_EQ(a->read(1u << 20).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(PackageArchiveTest, RootVersionRecordIsAccepted) {
  auto a = MustOpen(Fixture("root_version.pt"));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->version(), 6u);
}

struct BadOpen {
  const char* file;
  absl::StatusCode code;
  const char* message;  // substring (exact torch text where torch raises)
};

class BadOpenTest : public ::testing::TestWithParam<BadOpen> {};

TEST_P(BadOpenTest, FailsWithTypedError) {
  absl::StatusOr<std::shared_ptr<PackageArchive>> a =
      PackageArchive::Open(Fixture(GetParam().file));
  ASSERT_FALSE(a.ok()) << GetParam().file;
  EXPECT_EQ(a.status().code(), GetParam().code) << a.status();
  EXPECT_THAT(std::string(a.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Corrupt, BadOpenTest,
    ::testing::Values(
        BadOpen{"does_not_exist.pt", absl::StatusCode::kNotFound,
                "open file failed because of errno 2 on fopen: , file path: "},
        BadOpen{"empty.pt", absl::StatusCode::kInvalidArgument,
                "PytorchStreamReader failed reading zip archive: not a ZIP archive"},
        BadOpen{"garbage.pt", absl::StatusCode::kInvalidArgument,
                "PytorchStreamReader failed reading zip archive: failed finding central directory"},
        BadOpen{"truncated.pt", absl::StatusCode::kInvalidArgument,
                "PytorchStreamReader failed reading zip archive: failed finding central directory"},
        BadOpen{"truncated_tail.pt", absl::StatusCode::kInvalidArgument,
                "PytorchStreamReader failed reading zip archive: failed finding central directory"},
        BadOpen{"no_version.pt", absl::StatusCode::kInvalidArgument,
                "Expected hasRecord(\"version\") to be true, but got false."},
        BadOpen{"bad_version.pt", absl::StatusCode::kInvalidArgument,
                "[enforce fail at inline_container.cc:148] . Couldn't parse the version abc as Long Long."},
        BadOpen{"version_99.pt", absl::StatusCode::kFailedPrecondition,
                "Attempted to read a PyTorch file with version 99, but the maximum supported version for reading is 10."},
        BadOpen{"version_0.pt", absl::StatusCode::kFailedPrecondition,
                "Attempted to read a PyTorch file with version 0, but the minimum supported version for reading is 1."},
        BadOpen{"not_in_folder.pt", absl::StatusCode::kInvalidArgument,
                "[enforce fail at inline_container.cc:252] . file in archive is not in a subdirectory small/: other/mod.py"},
        BadOpen{"no_folder.pt", absl::StatusCode::kInvalidArgument,
                "[enforce fail at inline_container.cc:129] . file in archive is not in a subdirectory: "},
        BadOpen{"dotdot.pt", absl::StatusCode::kInvalidArgument,
                "record 'small/../evil.py' has an unsafe name"},
        BadOpen{"absolute.pt", absl::StatusCode::kInvalidArgument,
                "record 'small//etc/evil.py' has an unsafe name"},
        BadOpen{"stored_size_lies.pt", absl::StatusCode::kDataLoss,
                "record '.data/0.storage': declared size lies"},
        BadOpen{"beyond_end.pt", absl::StatusCode::kDataLoss,
                "extends beyond the end of the archive"},
        BadOpen{"bomb_huge_declared.pt", absl::StatusCode::kDataLoss,
                "record 'pf_demo/data/hello.txt': declared size lies"}));

struct BadRead {
  const char* file;
  const char* record;
  absl::StatusCode code;
  const char* message;
};

class BadReadTest : public ::testing::TestWithParam<BadRead> {};

TEST_P(BadReadTest, OpensButTheRecordFailsAndOthersStillRead) {
  auto a = MustOpen(Fixture(GetParam().file));
  ASSERT_NE(a, nullptr);
  for (int attempt = 0; attempt < 2; ++attempt) {  // the verdict is stable
    absl::StatusOr<RecordData> r = a->read(GetParam().record);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), GetParam().code) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(GetParam().message));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(Fixture(GetParam().file)));
  }
  EXPECT_EQ(ReadText(*a, ".data/version"), "6\n");
}

INSTANTIATE_TEST_SUITE_P(
    Corrupt, BadReadTest,
    ::testing::Values(
        BadRead{"crc_stored.pt", ".data/0.storage", absl::StatusCode::kDataLoss,
                "record '.data/0.storage': CRC-32 check failed"},
        BadRead{"crc_deflated.pt", kText, absl::StatusCode::kDataLoss,
                "record 'pf_demo/data/hello.txt': CRC-32 check failed"},
        BadRead{"bomb_small_declared.pt", kText, absl::StatusCode::kDataLoss,
                "declared size lies: data inflates to more than the declared 59 bytes"},
        BadRead{"bomb_large_declared.pt", kText, absl::StatusCode::kDataLoss,
                "declared size lies: data inflates to 59 bytes, 159 declared"},
        BadRead{"corrupt_deflate.pt", kText, absl::StatusCode::kDataLoss,
                "decompression failed or archive is corrupted"}));

TEST(PackageArchiveTest, UnsupportedMethodFailsOnRead) {
  auto a = MustOpen(Fixture("unsupported_method.pt"));
  ASSERT_NE(a, nullptr);
  absl::StatusOr<RecordData> r = a->read(kText);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(r.status().message(),
            "PytorchStreamReader failed reading file pf_demo/data/hello.txt: unsupported method");
}

TEST(PackageArchiveTest, ConcurrentReadsAgree) {
  auto a = MustOpen(Fixture("crc_stored.pt"));
  ASSERT_NE(a, nullptr);
  std::vector<std::thread> threads;
  const size_t corrupt = *a->find(".data/0.storage");
  std::vector<int> failures(8, 0), wrong(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        for (size_t i = 0; i < a->recordCount(); ++i) {
          absl::StatusOr<RecordData> r = a->read(i);
          if (r.ok()) continue;
          ++failures[t];
          if (i != corrupt || r.status().code() != absl::StatusCode::kDataLoss) ++wrong[t];
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 50);  // exactly the corrupt record, every time
  for (int w : wrong) EXPECT_EQ(w, 0);
}

class SnapshotTest : public ::testing::TestWithParam<bool /*from bytes*/> {};

TEST_P(SnapshotTest, HasItsOwnMappingAndSharesTheIndex) {
  std::string bytes = Slurp(kSmall);
  absl::StatusOr<std::shared_ptr<PackageArchive>> a =
      GetParam() ? PackageArchive::OpenBytes(bytes.data(), bytes.size())
                 : PackageArchive::Open(kSmall);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::shared_ptr<PackageArchive>> snap = (*a)->snapshot();
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(Names(**snap), Names(**a));
  EXPECT_EQ((*snap)->path(), (*a)->path());
  absl::StatusOr<RecordData> mine = (*snap)->read(".data/0.storage");
  absl::StatusOr<RecordData> shared = (*a)->read(".data/0.storage");
  ASSERT_TRUE(mine.ok() && shared.ok());
  EXPECT_NE(mine->data(), shared->data());
  EXPECT_TRUE((*snap)->mapping()->contains(mine->data(), mine->size()));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(mine->data()) % 64, 0u);
  EXPECT_EQ(mine->view(), shared->view());
  // A write through the snapshot's view stays in the snapshot.
  mine->data()[0] ^= 0xff;
  EXPECT_NE(mine->data()[0], shared->data()[0]);
  absl::StatusOr<RecordData> fresh = (*a)->snapshot().value()->read(".data/0.storage");
  ASSERT_TRUE(fresh.ok()) << "the verdict is shared, and the fresh mapping is pristine";
  EXPECT_EQ(fresh->view(), shared->view());
  // The snapshot outlives the archive it came from.
  a->reset();
  EXPECT_EQ(ReadText(**snap, kText), kHelloText);
}

INSTANTIATE_TEST_SUITE_P(FileAndBytes, SnapshotTest, ::testing::Bool());

TEST(CrcVerdictCacheTest, SharesVerdictsBetweenArchivesOfTheSameFile) {
  CrcVerdictCache cache;
  auto first = PackageArchive::Open(kSmall, &cache);
  ASSERT_TRUE(first.ok());
  // (Opening reads .data/version, which counts: compare deltas.)
  uint64_t base = (*first)->crcChecks();
  ASSERT_TRUE((*first)->read(".data/0.storage").ok());  // hashed, verdict remembered
  ASSERT_TRUE((*first)->read(".data/0.storage").ok());  // cached in the archive
  EXPECT_EQ((*first)->crcChecks() - base, 1u);
  auto second = PackageArchive::Open(kSmall, &cache);
  ASSERT_TRUE(second.ok());
  base = (*second)->crcChecks();
  EXPECT_TRUE((*second)->read(".data/0.storage").ok());
  EXPECT_EQ((*second)->crcChecks() - base, 0u) << "same unchanged file: not hashed again";
  auto third = PackageArchive::Open(kSmall);  // no cache
  ASSERT_TRUE(third.ok());
  base = (*third)->crcChecks();
  EXPECT_TRUE((*third)->read(".data/0.storage").ok());
  EXPECT_EQ((*third)->crcChecks() - base, 1u);
  // Failures are never remembered.
  auto bad = PackageArchive::Open(Fixture("crc_stored.pt"), &cache);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ((*bad)->read(".data/0.storage").status().code(), absl::StatusCode::kDataLoss);
  auto bad_again = PackageArchive::Open(Fixture("crc_stored.pt"), &cache);
  ASSERT_TRUE(bad_again.ok());
  base = (*bad_again)->crcChecks();
  EXPECT_EQ((*bad_again)->read(".data/0.storage").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ((*bad_again)->crcChecks() - base, 1u);
}

TEST(PackageArchiveTest, CrcCheckHashesTheFileNotTheMapping) {
  auto a = MustOpen(kSmall);
  ASSERT_NE(a, nullptr);
  // A write into the mapping before the first read (e.g. through another record's page)
  // does not fail the check: the file's bytes are what is verified.
  const RecordInfo& r = a->record(*a->find(".data/0.storage"));
  a->mapping()->data()[r.data_offset] ^= 0xff;
  uint64_t base = a->crcChecks();
  EXPECT_TRUE(a->read(".data/0.storage").ok());
  EXPECT_EQ(a->crcChecks() - base, 1u);
}

TEST(ArchiveAbiTest, ServesRecordsAndKeepsTheArchiveAlive) {
  PyfleetArchive abi = MakeArchiveAbi(MustOpen(kSmall));
  ASSERT_EQ(abi.struct_size, sizeof(PyfleetArchive));
  EXPECT_NE(ArchiveFromAbi(&abi), nullptr);
  EXPECT_EQ(std::string(abi.path(abi.ctx)), kSmall);
  std::vector<std::string> names;
  for (size_t i = 0; i < abi.record_count(abi.ctx); ++i) names.push_back(abi.record_name(abi.ctx, i));
  EXPECT_EQ(names, Lines(Fixture("small.records")));
  int64_t i = abi.find(abi.ctx, kText);
  ASSERT_GE(i, 0);
  EXPECT_EQ(abi.find(abi.ctx, "small/pf_demo/data/hello.txt"), -1);
  abi.retain(abi.ctx);
  abi.release(abi.ctx);
  PyfleetRecordView view{};
  ASSERT_EQ(abi.read(abi.ctx, static_cast<size_t>(i), &view), nullptr);
  abi.release(abi.ctx);  // the view still holds the mapping
  EXPECT_EQ(std::string(static_cast<const char*>(view.data), view.size), kHelloText);
  view.release(view.owner);
}

TEST(ArchiveAbiTest, ReadErrorsAreStatuses) {
  PyfleetArchive abi = MakeArchiveAbi(MustOpen(Fixture("crc_stored.pt")));
  PyfleetRecordView view{};
  PyfleetStatus* s = abi.read(abi.ctx, abi.find(abi.ctx, ".data/0.storage"), &view);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->code, PYFLEET_DATA_LOSS);
  EXPECT_THAT(std::string(s->message), HasSubstr("CRC-32 check failed"));
  free(s->message);
  free(s);
  s = abi.read(abi.ctx, 1000, &view);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->code, PYFLEET_OUT_OF_RANGE);
  free(s->message);
  free(s);
  abi.release(abi.ctx);
}

}  // namespace
}  // namespace pyfleet::internal
