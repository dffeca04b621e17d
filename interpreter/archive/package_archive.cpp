// File: package_archive.cpp — see package_archive.h. Opening, lookup, version check
// and read dispatch; the ZIP index lives in package_archive_zip.cpp, directories in
// package_archive_dir.cpp.
#include "interpreter/archive/package_archive.h"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "interpreter/archive/sha256.h"

namespace pyfleet::internal {

PackageArchive::~PackageArchive() = default;

bool CrcVerdictCache::verified(const FileIdentity& file, uint64_t data_offset) const {
  if (!file.valid) return false;
  absl::MutexLock lock(&mu_);
  return verified_.contains(MakeKey(file, data_offset));
}

void CrcVerdictCache::markVerified(const FileIdentity& file, uint64_t data_offset) {
  if (!file.valid) return;
  absl::MutexLock lock(&mu_);
  verified_.insert(MakeKey(file, data_offset));
}

namespace {

absl::Status Sha256Mismatch(const std::string& path, const std::string& want, const std::string& have) {
  absl::Status s = absl::PermissionDeniedError(
      absl::StrCat(path, ": SHA-256 mismatch: expected ", want, ", the file has ", have));
  s.SetPayload(kSha256MismatchPayload, absl::Cord(have));
  return s;
}

// The digest of `mapping`'s file if it is `expected` (parsed by ParseSha256Hex), else
// the status verifySha256() gives for a mismatch. See Note [Pinned packages].
absl::StatusOr<std::string> CheckPin(const MappedFile& mapping, const std::string& path,
                                     std::string_view expected) {
  absl::StatusOr<std::string> want = ParseSha256Hex(expected);
  if (!want.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": bad pinned digest: ", want.status().message()));
  }
  absl::StatusOr<std::string> have = FileSha256Hex(mapping.fd(), mapping.size(), path);
  if (!have.ok()) return have.status();
  if (*have != *want) return Sha256Mismatch(path, *want, *have);
  return have;
}

}  // namespace

absl::StatusOr<std::shared_ptr<PackageArchive>> PackageArchive::Open(const std::string& path,
                                                                     CrcVerdictCache* crc_cache,
                                                                     std::string_view sha256) {
  // Never the file itself: Note [Package files may change on disk] in loader/base/mapped_file.h.
  absl::StatusOr<std::shared_ptr<MappedFile>> mapping = MappedFile::CopyOfFile(path);
  if (!mapping.ok()) {
    if (mapping.status().code() == absl::StatusCode::kInvalidArgument ||
        mapping.status().code() == absl::StatusCode::kDataLoss) {
      return mapping.status();
    }
    // torch's FileAdapter wording (its strerror_r text comes out empty on glibc).
    int err = mapping.status().code() == absl::StatusCode::kNotFound           ? ENOENT
              : mapping.status().code() == absl::StatusCode::kPermissionDenied ? EACCES
                                                                               : EIO;
    absl::Status st(mapping.status().code(),
                    absl::StrCat("open file failed because of errno ", err,
                                 " on fopen: , file path: ", path));
    st.SetPayload("pyfleet.archive.detail", absl::Cord(mapping.status().message()));
    return st;
  }
  absl::StatusOr<std::shared_ptr<PackageArchive>> archive = OpenZip(*std::move(mapping), path, sha256);
  if (archive.ok()) (*archive)->crc_cache_ = crc_cache;
  return archive;
}

absl::StatusOr<std::shared_ptr<PackageArchive>> PackageArchive::OpenBytes(
    const void* data, size_t size, const std::string& display_name, std::string_view sha256) {
  absl::StatusOr<std::shared_ptr<MappedFile>> mapping = MappedFile::Copy(data, size);
  if (!mapping.ok()) return mapping.status();
  return OpenZip(*std::move(mapping), display_name, sha256);
}

absl::StatusOr<std::shared_ptr<PackageArchive>> PackageArchive::OpenZip(
    std::shared_ptr<MappedFile> mapping, std::string path, std::string_view sha256) {
  // A pinned file is checked before any of its bytes are parsed (Note [Pinned packages]).
  std::string digest;
  if (!sha256.empty()) {
    absl::StatusOr<std::string> pinned = CheckPin(*mapping, path, sha256);
    if (!pinned.ok()) return pinned.status();
    digest = *std::move(pinned);
  }
  std::shared_ptr<PackageArchive> archive(new PackageArchive(Kind::kZip, std::move(path)));
  archive->mapping_ = std::move(mapping);
  absl::Status st = archive->indexZip();
  if (!st.ok()) return st;
  st = archive->checkVersion();
  if (!st.ok()) return st;
  if (!digest.empty()) {
    absl::MutexLock lock(&archive->shared_->sha256_mu);
    archive->shared_->sha256 = std::move(digest);
  }
  return archive;
}

absl::StatusOr<std::shared_ptr<PackageArchive>> PackageArchive::OpenDirectory(
    const std::string& dir) {
  std::shared_ptr<PackageArchive> archive(new PackageArchive(Kind::kDirectory, dir));
  absl::Status st = archive->indexDirectory();
  if (!st.ok()) return st;
  return archive;
}

absl::StatusOr<std::shared_ptr<PackageArchive>> PackageArchive::snapshot() const {
  if (kind_ != Kind::kZip) {
    return std::const_pointer_cast<PackageArchive>(shared_from_this());
  }
  absl::StatusOr<std::shared_ptr<MappedFile>> mapping = mapping_->remap();
  if (!mapping.ok()) {
    return absl::Status(mapping.status().code(),
                        absl::StrCat(path_, ": cannot map the archive again: ",
                                     mapping.status().message()));
  }
  std::shared_ptr<PackageArchive> snap(new PackageArchive(kind_, path_));
  snap->archive_name_ = archive_name_;
  snap->version_ = version_;
  snap->crc_cache_ = crc_cache_;
  snap->shared_ = shared_;
  snap->mapping_ = *std::move(mapping);
  return snap;
}

absl::StatusOr<std::string> PackageArchive::sha256() const {
  if (kind_ != Kind::kZip) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, " is a directory (an unzipped package): only a package file has a SHA-256"));
  }
  // See Note [Pinned packages]. Held while hashing: concurrent first calls hash once.
  absl::MutexLock lock(&shared_->sha256_mu);
  if (shared_->sha256.empty()) {
    absl::StatusOr<std::string> digest = FileSha256Hex(mapping_->fd(), mapping_->size(), path_);
    if (!digest.ok()) return digest.status();
    shared_->sha256 = *std::move(digest);
  }
  return shared_->sha256;
}

absl::Status PackageArchive::verifySha256(std::string_view expected) const {
  absl::StatusOr<std::string> want = ParseSha256Hex(expected);
  if (!want.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": bad pinned digest: ", want.status().message()));
  }
  absl::StatusOr<std::string> have = sha256();
  if (!have.ok()) return have.status();
  if (*have != *want) return Sha256Mismatch(path_, *want, *have);
  return absl::OkStatus();
}

void PackageArchive::buildLookup() {
  shared_->by_name.reserve(shared_->records.size());
  for (size_t i = 0; i < shared_->records.size(); ++i) shared_->by_name.emplace(shared_->records[i].name, i);
}

std::optional<size_t> PackageArchive::find(std::string_view name) const {
  auto it = shared_->by_name.find(absl::string_view(name.data(), name.size()));
  if (it == shared_->by_name.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<RecordData> PackageArchive::read(size_t index) const {
  if (index >= shared_->records.size()) {
    return absl::OutOfRangeError(absl::StrCat(path_, ": no record #", index, " (",
                                              shared_->records.size(), " records)"));
  }
  return kind_ == Kind::kZip ? readZip(index) : readFile(index);
}

absl::StatusOr<RecordData> PackageArchive::read(std::string_view name) const {
  std::optional<size_t> index = find(name);
  if (!index.has_value()) {
    absl::string_view n(name.data(), name.size());
    if (kind_ == Kind::kDirectory) {
      return absl::NotFoundError(
          absl::StrCat("[Errno 2] No such file or directory: '", path_, "/", n, "'"));
    }
    return absl::NotFoundError(
        absl::StrCat("PytorchStreamReader failed locating file ", n, ": file not found"));
  }
  return read(*index);
}

// Mirrors PyTorchStreamReader::init(): ".data/version", else "version", parsed like
// caffe2::stoull and bounded by kMin/kMaxSupportedFileFormatVersion (1 and 10 in
// torch 1.13). The messages carry torch's "[enforce fail at ...]" prefixes verbatim.
absl::Status PackageArchive::checkVersion() {
  std::optional<size_t> index = find(".data/version");
  if (!index.has_value()) index = find("version");
  if (!index.has_value()) {
    return absl::InvalidArgumentError(
        "Expected hasRecord(\"version\") to be true, but got false.  (Could this error "
        "message be improved?  If so, please report an enhancement request to PyTorch.)");
  }
  absl::StatusOr<RecordData> data = read(*index);
  if (!data.ok()) return data.status();
  std::string text(data->view());
  errno = 0;
  const char* begin = text.c_str();
  char* end = nullptr;
  unsigned long long v = std::strtoull(begin, &end, 10);
  if (end == begin) {
    return absl::InvalidArgumentError(absl::StrCat(
        "[enforce fail at inline_container.cc:148] . Couldn't parse the version ", text,
        " as Long Long."));
  }
  if (errno == ERANGE) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": record '", shared_->records[*index].name, "': version ", text,
                     " is out of range"));
  }
  constexpr uint64_t kMinSupported = 1;
  constexpr uint64_t kMaxSupported = 10;
  version_ = v;
  if (version_ < kMinSupported) {
    return absl::FailedPreconditionError(absl::StrCat(
        "[enforce fail at inline_container.cc:154] . Attempted to read a PyTorch file with "
        "version ", version_, ", but the minimum supported version for reading is ",
        kMinSupported,
        ". Your PyTorch script module file is too old. Please regenerate it with latest "
        "version of PyTorch to mitigate this issue."));
  }
  if (version_ > kMaxSupported) {
    return absl::FailedPreconditionError(absl::StrCat(
        "[enforce fail at inline_container.cc:165] . Attempted to read a PyTorch file with "
        "version ", version_, ", but the maximum supported version for reading is ",
        kMaxSupported,
        ". The version of your PyTorch installation may be too old, please upgrade "
        "PyTorch to latest version to mitigate this issue."));
  }
  return absl::OkStatus();
}

}  // namespace pyfleet::internal
