// The C++ PackageImporter inside pyfleet interpreters, over a pyfleet::Package that
// the host opened once: shared weights, modules, typed errors. Pool of 2 interpreters
// (pool_main.cpp); packages from tests/fixtures (small.pt, broken/).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <stdlib.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/proc_maps.h"
#include "tests/interpreter/interpreter_test_env.h"

namespace pyfleet {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using testing::InterpreterPool;

Interpreter& I(int i) { return InterpreterPool::Get().at(i); }
std::string Fixture(const std::string& name) { return std::string(PYFLEET_FIXTURES_DIR) + "/" + name; }

// fixture_spec.HELLO_TEXT: small.pt's pf_demo/data/hello.txt.
constexpr char kHelloText[] =
    "Hello from a package \u2014 gr\u00fc\u00dfe, \u4f60\u597d, \U0001F600\nsecond line\n";

TEST(PackageImporterInInterpreterTest, ImportedModuleRunsInEachInterpreter) {
  Package package = Package::open(Fixture("small.pt"));
  for (int i = 0; i < 2; ++i) {
    Obj importer = I(i).packageImporter(package);
    Obj maths = importer.attr("import_module")({"pf_demo.util.maths"});
    EXPECT_EQ(maths.attr("cube")({3}).toInt(), 27);
    EXPECT_THAT(maths.attr("__name__").toString(), MatchesRegex("<torch_package_[0-9]+>\\.pf_demo\\.util\\.maths"));
  }
}

TEST(PackageImporterInInterpreterTest, WeightsLoadedInTwoInterpretersShareOneStorage) {
  Package package = Package::open(Fixture("small.pt"));
  at::Tensor a[2];
  for (int i = 0; i < 2; ++i) {
    Obj tensors = I(i).packageImporter(package).attr("load_pickle")({"pf_demo.data", "tensors.pkl"});
    a[i] = tensors.item({"a"}).toTensor();
  }
  EXPECT_TRUE(at::equal(a[0], at::arange(16.0)));
  EXPECT_EQ(a[0].data_ptr(), a[1].data_ptr());  // one mapping, no copy per interpreter
  // Not even one copy: the bytes are the archive's own mapping (of its sealed copy of the
  // file, Note [Package files may change on disk] in loader/base/mapped_file.h).
  const std::optional<testing::Mapping> m = testing::mappingContaining(a[0].data_ptr());
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->path, testing::packageCopyOf(Fixture("small.pt")));
  EXPECT_GE(testing::bytesMappedFrom(Fixture("small.pt")), static_cast<uint64_t>(a[0].nbytes()));
}

// The one archive serves both interpreters' loads at the same time.
TEST(PackageImporterInInterpreterTest, ConcurrentLoadsFromOnePackageAgree) {
  Package package = Package::open(Fixture("small.pt"));
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      try {
        Obj load = I(i).packageImporter(package).attr("load_pickle");
        for (int k = 0; k < 200; ++k) {
          at::Tensor b = load({"pf_demo.data", "tensors.pkl"}).item({"b"}).toTensor();
          if (!at::equal(b, at::ones({3, 3}))) errors[i] = "wrong tensor at load " + std::to_string(k);
        }
        I(i).detachThread();
      } catch (const Error& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(errors[0].empty()) << errors[0];
  EXPECT_TRUE(errors[1].empty()) << errors[1];
}

// Note [Who sees an in-place write to a loaded weight] (package_archive.h): a write
// through a weight loaded from a host Package is seen by later loads of that Package in
// every interpreter, and never by the file.
TEST(PackageImporterInInterpreterTest, InPlaceWriteIsSharedByThePackageButNeverReachesTheFile) {
  Package package = Package::open(Fixture("small.pt"));
  Obj load0 = I(0).packageImporter(package).attr("load_pickle");
  I(0).eval("lambda d: d['a'].add_(100)")({load0({"pf_demo.data", "tensors.pkl"})});
  at::Tensor seen = I(1).packageImporter(package).attr("load_pickle")({"pf_demo.data", "tensors.pkl"})
                        .item({"a"})
                        .toTensor();
  EXPECT_TRUE(at::equal(seen, at::arange(16.0) + 100));
  Package fresh = Package::open(Fixture("small.pt"));  // a new mapping reads the file
  at::Tensor original =
      I(1).packageImporter(fresh).attr("load_pickle")({"pf_demo.data", "tensors.pkl"}).item({"a"}).toTensor();
  EXPECT_TRUE(at::equal(original, at::arange(16.0)));
}

TEST(PackageImporterInInterpreterTest, CopyStoragesGivesAPrivateCopy) {
  Package package = Package::open(Fixture("small.pt"));
  Obj importer = I(0).packageImporter(package);
  at::Tensor shared = importer.attr("load_pickle")({"pf_demo.data", "tensors.pkl"}).item({"a"}).toTensor();
  at::Tensor copied = importer.attr("load_pickle").call({"pf_demo.data", "tensors.pkl"}, {{"copy_storages", true}})
                          .item({"a"})
                          .toTensor();
  EXPECT_NE(copied.data_ptr(), shared.data_ptr());
  EXPECT_TRUE(at::equal(copied, shared));
}

TEST(PackageImporterInInterpreterTest, ReadingTextAndMissingRecords) {
  Package package = Package::open(Fixture("small.pt"));
  Obj importer = I(1).packageImporter(package);
  EXPECT_EQ(importer.attr("load_text")({"pf_demo.data", "hello.txt"}).toString(), kHelloText);
  try {
    importer.attr("load_binary")({"pf_demo.data", "no_such_record.bin"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    // torch's PyTorchFileReader wording, as RuntimeError (what the stock importer raises).
    EXPECT_EQ(e.pythonType(), "builtins.RuntimeError");
    EXPECT_EQ(e.status().code(), absl::StatusCode::kUnknown);
    EXPECT_THAT(std::string(e.status().message()),
                HasSubstr("PytorchStreamReader failed locating file pf_demo/data/no_such_record.bin: file not found"));
  }
  EXPECT_EQ(I(1).eval("1 + 1").toInt(), 2);
}

// Package::open's contract (package.h): NOT_FOUND for a missing file, INVALID_ARGUMENT or
// DATA_LOSS for a corrupt archive, the message naming the file and what is wrong.
TEST(PackageImporterInInterpreterTest, CorruptArchivesAreTypedErrorsNamingTheFile) {
  struct Case {
    const char* file;
    absl::StatusCode code;
    const char* what;
  };
  const Case cases[] = {
      {"broken/truncated_half.pt", absl::StatusCode::kInvalidArgument,
       "PytorchStreamReader failed reading zip archive: failed finding central directory"},
      {"broken/not_a_zip.pt", absl::StatusCode::kInvalidArgument,
       "PytorchStreamReader failed reading zip archive: failed finding central directory"},
      {"broken/empty_file.pt", absl::StatusCode::kInvalidArgument,
       "PytorchStreamReader failed reading zip archive: not a ZIP archive"},
      {"broken/record_dotdot.pt", absl::StatusCode::kInvalidArgument,
       "record 'record_dotdot/../pf_evil.py' has an unsafe name"},
      {"broken/stored_size_past_end.pt", absl::StatusCode::kDataLoss, "extends beyond the end of the archive"},
      {"does_not_exist.pt", absl::StatusCode::kNotFound, "open file failed because of errno 2 on fopen"},
  };
  for (const Case& c : cases) {
    const std::string path = Fixture(c.file);
    try {
      Package::open(path);
      ADD_FAILURE() << c.file << " opened";
    } catch (const Error& e) {
      EXPECT_EQ(e.status().code(), c.code) << e.what();
      EXPECT_THAT(std::string(e.status().message()), HasSubstr(path)) << c.file;
      EXPECT_THAT(std::string(e.status().message()), HasSubstr(c.what)) << c.file;
      EXPECT_EQ(e.pythonType(), "");  // the host's own error, not a Python one
    }
  }
}

TEST(PackageImporterInInterpreterTest, CrcMismatchSurfacesWhenTheRecordIsRead) {
  Package package = Package::open(Fixture("broken/crc_mismatch_storage.pt"));
  try {
    I(0).packageImporter(package).attr("load_pickle")({"pf_demo.data", "tensors.pkl"});
    FAIL() << "expected a CRC error";
  } catch (const Error& e) {
    // The archive's DATA_LOSS reaches Python as torch's RuntimeError, and the host as
    // that Python error.
    EXPECT_EQ(e.pythonType(), "builtins.RuntimeError");
    EXPECT_EQ(e.status().code(), absl::StatusCode::kUnknown);
    EXPECT_THAT(std::string(e.status().message()), HasSubstr(Fixture("broken/crc_mismatch_storage.pt")));
    EXPECT_THAT(std::string(e.status().message()), HasSubstr("record '.data/0.storage': CRC-32 check failed"));
  }
  EXPECT_EQ(I(0).eval("2 * 21").toInt(), 42);
}

}  // namespace
}  // namespace pyfleet
