// The C++ PackageImporter inside pyfleet interpreters, over a pyfleet::Package that
// the host opened once: shared weights, modules, typed errors. Pool of 2 interpreters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/interpreter/interpreter_test_env.h"

namespace pyfleet {
namespace {

using ::testing::HasSubstr;
using testing::InterpreterPool;

Interpreter& I(int i) { return InterpreterPool::Get().at(i); }
std::string Fixture(const std::string& name) { return std::string(PYFLEET_FIXTURES_DIR) + "/" + name; }

// The file mapped at `address` according to /proc/self/maps ("" if none).
std::string MappedFileAt(const void* address) {
  const auto a = reinterpret_cast<uintptr_t>(address);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode >> path;
    const size_t dash = range.find('-');
    if (a >= std::stoull(range.substr(0, dash), nullptr, 16) && a < std::stoull(range.substr(dash + 1), nullptr, 16)) {
      return path;
    }
  }
  return "";
}

TEST(PackageImporterInInterpreterTest, ImportedModuleRunsInEachInterpreter) {
  Package package = Package::open(Fixture("small.pt"));
  for (int i = 0; i < 2; ++i) {
    Obj importer = I(i).packageImporter(package);
    Obj maths = importer.attr("import_module")({"pf_demo.util.maths"});
    EXPECT_EQ(maths.attr("cube")({3}).toInt(), 27);
    EXPECT_THAT(maths.attr("__name__").toString(), HasSubstr(">.pf_demo.util.maths"));  // <torch_package_N>
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
  EXPECT_THAT(MappedFileAt(a[0].data_ptr()), ::testing::EndsWith("/small.pt"));  // not even one copy
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

// Note [Shared weights and in-place writes]: a write through a loaded weight is seen by
// later loads of the same Package in every interpreter, and never by the file.
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
  at::Tensor copied = importer.attr("load_pickle")({"pf_demo.data", "tensors.pkl"}, {{"copy_storages", true}})
                          .item({"a"})
                          .toTensor();
  EXPECT_NE(copied.data_ptr(), shared.data_ptr());
  EXPECT_TRUE(at::equal(copied, shared));
}

TEST(PackageImporterInInterpreterTest, ReadingTextAndMissingRecords) {
  Package package = Package::open(Fixture("small.pt"));
  Obj importer = I(1).packageImporter(package);
  EXPECT_FALSE(importer.attr("load_text")({"pf_demo.data", "hello.txt"}).toString().empty());
  try {
    importer.attr("load_binary")({"pf_demo.data", "no_such_record.bin"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.status().message()), HasSubstr("no_such_record.bin"));
    EXPECT_FALSE(e.pythonType().empty());
  }
  EXPECT_EQ(I(1).eval("1 + 1").toInt(), 2);
}

TEST(PackageImporterInInterpreterTest, CorruptArchivesAreTypedErrorsNamingTheFile) {
  for (const char* name : {"truncated_half.pt", "not_a_zip.pt", "empty_file.pt", "record_dotdot.pt"}) {
    const std::string path = Fixture(std::string("broken/") + name);
    try {
      Package::open(path);
      ADD_FAILURE() << name << " opened";
    } catch (const Error& e) {
      EXPECT_NE(e.status().code(), absl::StatusCode::kOk);
      EXPECT_THAT(std::string(e.status().message()), HasSubstr(name)) << e.what();
    }
  }
  try {
    Package::open(Fixture("does_not_exist.pt"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound) << e.what();
  }
}

TEST(PackageImporterInInterpreterTest, CrcMismatchSurfacesWhenTheRecordIsRead) {
  Package package = Package::open(Fixture("broken/crc_mismatch_storage.pt"));
  try {
    I(0).packageImporter(package).attr("load_pickle")({"pf_demo.data", "tensors.pkl"});
    FAIL() << "expected a CRC error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("crc_mismatch_storage.pt"));
  }
  EXPECT_EQ(I(0).eval("2 * 21").toInt(), 42);
}

}  // namespace
}  // namespace pyfleet

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  pyfleet::testing::InterpreterPool::Install(2);
  return RUN_ALL_TESTS();
}
