// File: sha256_test.cpp
//
// Integrity pinning at the archive layer (Note [Pinned packages] in
// interpreter/archive/package_archive.h): PackageArchive::sha256() equals hashlib's
// digest of the file (digests.txt, written with the packages), is computed once per
// archive (snapshots share it), faults in no page of the mapping, and verifySha256()
// refuses another digest with PermissionDenied naming both.
#include <fcntl.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>

#include "interpreter/archive/package_archive.h"
#include "interpreter/archive/sha256.h"
#include "tests/common/proc_maps.h"

namespace pyfleet::internal {
namespace {

using ::testing::HasSubstr;

std::string Package(const std::string& name) { return std::string(PYFLEET_SECURITY_PACKAGES) + "/" + name; }

std::map<std::string, std::string> Digests() {
  std::map<std::string, std::string> out;
  std::ifstream in(Package("digests.txt"));
  std::string name, digest;
  while (in >> name >> digest) out[name] = digest;
  return out;
}

std::shared_ptr<PackageArchive> MustOpen(const std::string& path) {
  absl::StatusOr<std::shared_ptr<PackageArchive>> a = PackageArchive::Open(path);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? *a : nullptr;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(PackageArchiveSha256Test, EqualsHashlibForEveryPackage) {
  std::map<std::string, std::string> digests = Digests();
  ASSERT_EQ(digests.size(), 3u);
  for (const auto& [name, digest] : digests) {
    auto a = MustOpen(Package(name));
    ASSERT_NE(a, nullptr);
    absl::StatusOr<std::string> got = a->sha256();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, digest) << name;
    EXPECT_TRUE(a->verifySha256(digest).ok());
  }
}

TEST(PackageArchiveSha256Test, BytesArchiveHasTheDigestOfItsBytes) {
  const std::string bytes = Slurp(Package("model.pt"));
  absl::StatusOr<std::shared_ptr<PackageArchive>> a = PackageArchive::OpenBytes(bytes.data(), bytes.size());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->sha256().value(), Digests().at("model.pt"));
  EXPECT_EQ(Sha256Hex(bytes.data(), bytes.size()), Digests().at("model.pt"));
}

TEST(PackageArchiveSha256Test, MismatchIsPermissionDeniedNamingBothDigests) {
  auto a = MustOpen(Package("model.pt"));
  const std::string other = Digests().at("vision.pt");
  absl::Status s = a->verifySha256(other);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), Package("model.pt") + ": SHA-256 mismatch: expected " + other + ", the file has " +
                             Digests().at("model.pt"));
}

TEST(PackageArchiveSha256Test, ParseAcceptsEitherCaseAndRejectsTheRest) {
  const std::string d = Digests().at("model.pt");
  std::string upper = d;
  for (char& c : upper) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(ParseSha256Hex(upper).value(), d);
  EXPECT_EQ(ParseSha256Hex("  " + d + "\n").value(), d);
  for (const std::string& bad : {std::string(), d.substr(1), d + "a", std::string(63, 'a') + "z"}) {
    absl::StatusOr<std::string> p = ParseSha256Hex(bad);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  auto a = MustOpen(Package("model.pt"));
  EXPECT_EQ(a->verifySha256("xyz").code(), absl::StatusCode::kInvalidArgument);
}

TEST(PackageArchiveSha256Test, DirectoryArchiveHasNoDigest) {
  absl::StatusOr<std::shared_ptr<PackageArchive>> a =
      PackageArchive::OpenDirectory(std::string(PYFLEET_FIXTURES_DIR) + "/features_dir");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->sha256().status().code(), absl::StatusCode::kFailedPrecondition);
}

// The digest is of the open file's bytes when first asked for, then cached for the
// archive and its snapshots: a write into the file afterwards (same inode) is not seen
// by it, only by a new archive of the file. (Also the documented limit of pinning.)
TEST(PackageArchiveSha256Test, DigestIsComputedOncePerArchiveAndSharedWithSnapshots) {
  char path[] = "/tmp/pyfleet-sha256-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string bytes = Slurp(Package("model.pt"));
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  auto a = MustOpen(path);
  const std::string original = Digests().at("model.pt");
  EXPECT_EQ(a->sha256().value(), original);
  // One bit of a tensor storage's data: the archive stays a valid ZIP.
  std::optional<size_t> storage = a->find(".data/0.storage");
  ASSERT_TRUE(storage.has_value());
  const uint64_t at = a->record(*storage).data_offset;
  char flipped = static_cast<char>(bytes[at] ^ 1);
  ASSERT_EQ(::pwrite(fd, &flipped, 1, static_cast<off_t>(at)), 1);
  EXPECT_EQ(a->sha256().value(), original);              // cached
  EXPECT_EQ(a->snapshot().value()->sha256().value(), original);  // shared
  auto fresh = MustOpen(path);
  ASSERT_NE(fresh, nullptr);
  EXPECT_NE(fresh->sha256().value(), original);          // a new archive hashes again
  EXPECT_EQ(fresh->verifySha256(original).code(), absl::StatusCode::kPermissionDenied);
  ::close(fd);
  ::unlink(path);
}

// Hashing reads the file with pread(): the archive's mapping gains no resident pages.
TEST(PackageArchiveSha256Test, HashingFaultsInNoPageOfTheMapping) {
  auto a = MustOpen(Package("vision.pt"));  // ~5 MB, almost all of it one storage
  const MappedFile* m = a->mapping();
  auto rss = [&] {
    std::optional<pyfleet::testing::Mapping> s = pyfleet::testing::smapsMappingContaining(m->data());
    return s.has_value() ? s->kb.at("Rss") : ~uint64_t{0};
  };
  const uint64_t before = rss();
  ASSERT_NE(before, ~uint64_t{0});
  ASSERT_TRUE(a->sha256().ok());
  EXPECT_LE(rss(), before) << "kB resident in the mapping after hashing " << m->size() << " bytes";
  EXPECT_LT(rss() * 1024, m->size() / 4);
}

}  // namespace
}  // namespace pyfleet::internal
