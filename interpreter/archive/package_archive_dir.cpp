// File: package_archive_dir.cpp — PackageArchive over a directory laid out like an
// unzipped package, as torch's DirectoryReader reads it.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "interpreter/archive/package_archive.h"
#include "loader/base/posix_error.h"

namespace pyfleet::internal {
namespace {

// Guards against symlink loops (glob itself would recurse until the path is too long).
constexpr int kMaxDepth = 64;

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Appends the files below `dir` (relative name prefix `rel`) in the order of
// glob.glob(f"{dir}/**", recursive=True): readdir order, depth first, each directory's
// own entries as they come. Names with a hidden ('.') component go to `hidden`, since
// glob skips them but DirectoryReader.has_record/get_record still find them.
absl::Status Walk(const std::string& dir, const std::string& rel, bool under_hidden, int depth,
                  std::vector<RecordInfo>& visible, std::vector<RecordInfo>& hidden) {
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": directory nesting deeper than ",
                                                   kMaxDepth, " (a symlink loop?)"));
  }
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return absl::NotFoundError(absl::StrCat("[Errno ", errno, "] cannot list directory: '",
                                            dir, "'"));
  }
  absl::Cleanup closer = [d] { ::closedir(d); };
  while (dirent* ent = ::readdir(d)) {
    std::string name = ent->d_name;
    if (name == "." || name == "..") continue;
    std::string path = absl::StrCat(dir, "/", name);
    std::string rel_name = rel.empty() ? name : absl::StrCat(rel, "/", name);
    bool is_hidden = under_hidden || name[0] == '.';
    if (IsDir(path)) {
      absl::Status st = Walk(path, rel_name, is_hidden, depth + 1, visible, hidden);
      if (!st.ok()) return st;
      continue;
    }
    RecordInfo r;
    r.name = std::move(rel_name);
    r.method = RecordMethod::kFile;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) r.size = static_cast<uint64_t>(st.st_size);
    (is_hidden ? hidden : visible).push_back(std::move(r));
  }
  return absl::OkStatus();
}

absl::Status OsError(int err, const std::string& path) {
  std::string msg = absl::StrCat("[Errno ", err, "] ", ErrnoText(err), ": '", path, "'");
  return err == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
}

}  // namespace

absl::Status PackageArchive::indexDirectory() {
  if (!IsDir(path_)) {
    return absl::NotFoundError(absl::StrCat(path_, ": not a directory"));
  }
  std::vector<RecordInfo> hidden;
  absl::Status st = Walk(path_, "", false, 0, shared_->records, hidden);
  if (!st.ok()) return st;
  for (RecordInfo& r : hidden) shared_->records.push_back(std::move(r));
  buildLookup();
  return absl::OkStatus();
}

// One private mapping per read, like DirectoryReader's UntypedStorage.from_file(...,
// shared=False): the view owns it.
absl::StatusOr<RecordData> PackageArchive::readFile(size_t index) const {
  std::string path = absl::StrCat(path_, "/", shared_->records[index].name);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return OsError(errno, path);
  ::close(fd);
  absl::StatusOr<std::shared_ptr<MappedFile>> mapping = MappedFile::Map(path);
  if (!mapping.ok()) return mapping.status();
  const uint8_t* data = (*mapping)->data();
  size_t size = (*mapping)->size();
  return RecordData(data, size, std::shared_ptr<const void>(*std::move(mapping)),
                    /*aliases_archive=*/false);
}

}  // namespace pyfleet::internal
