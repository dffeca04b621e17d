// File: package_registry.cpp — see package_registry.h.
#include "runtime/src/package_registry.h"

#include <sys/stat.h>

#include <cerrno>
#include <tuple>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "interpreter/archive/package_archive.h"
#include "loader/base/posix_error.h"
#include "loader/base/status_macros.h"

namespace pyfleet::internal {
namespace {

using FileKey = std::tuple<uint64_t, uint64_t, int64_t, int64_t>;  // dev, ino, size, mtime (ns)

// Process-wide by design (see the Note): the mapping is a process resource, and two
// managers serving one file should share one copy of its weights. Entries are weak: the
// archive closes when its last user goes. Leaked on purpose, so that Packages destroyed
// during static destruction still find it.
struct Registry {
  absl::Mutex mu;
  absl::flat_hash_map<FileKey, std::weak_ptr<const PackageArchive>> open ABSL_GUARDED_BY(mu);
};

Registry& TheRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

absl::Status WithPath(const absl::Status& s, const std::string& path) {
  // Archive errors keep torch's wording ("PytorchStreamReader failed ..."); name the file.
  if (s.message().find(path) != absl::string_view::npos) return s;
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}

}  // namespace

namespace {

// The archive of `path` from the registry, or newly opened (pinned to `sha256` if that
// is not empty: checked before the file is parsed), and whether it was newly opened.
absl::StatusOr<std::pair<std::shared_ptr<const PackageArchive>, bool>> FindOrOpen(const std::string& path,
                                                                                   std::string_view sha256) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return PosixError(errno, absl::StrCat("open ", path));
  const FileKey key{st.st_dev, st.st_ino, static_cast<int64_t>(st.st_size),
                    int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
  Registry& registry = TheRegistry();
  {
    absl::MutexLock lock(&registry.mu);
    auto it = registry.open.find(key);
    if (it != registry.open.end()) {
      if (std::shared_ptr<const PackageArchive> archive = it->second.lock()) return std::make_pair(archive, false);
    }
  }
  // Opened (and, pinned, hashed: ~0.1 s for 100 MB) outside the lock, so that loads of
  // other files do not wait. Two threads opening the same file at once both open it; the
  // first to register wins and the other's archive is dropped unused.
  absl::StatusOr<std::shared_ptr<PackageArchive>> opened = PackageArchive::Open(path, nullptr, sha256);
  if (!opened.ok()) return WithPath(opened.status(), path);
  std::shared_ptr<const PackageArchive> archive = std::move(opened).value();
  absl::MutexLock lock(&registry.mu);
  auto it = registry.open.find(key);
  if (it != registry.open.end()) {
    if (std::shared_ptr<const PackageArchive> first = it->second.lock()) return std::make_pair(first, false);
  }
  registry.open[key] = archive;
  // Forget entries whose archives are gone, so the map does not grow without bound.
  for (auto e = registry.open.begin(); e != registry.open.end();) {
    if (e->second.expired()) {
      registry.open.erase(e++);
    } else {
      ++e;
    }
  }
  return std::make_pair(archive, true);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const PackageArchive>> OpenSharedArchive(const std::string& path,
                                                                        std::string_view sha256) {
  absl::StatusOr<std::pair<std::shared_ptr<const PackageArchive>, bool>> found = FindOrOpen(path, sha256);
  if (!found.ok()) return found.status();
  auto [archive, opened] = *std::move(found);
  if (opened || sha256.empty()) return archive;
  // Open already: checked against its cached digest (hashing the file once if no pinned
  // load did yet), outside the registry's lock.
  absl::Status verified = archive->verifySha256(sha256);
  if (!verified.ok()) return verified;
  return archive;
}

}  // namespace pyfleet::internal
