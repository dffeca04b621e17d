#include "pyfleet/package.h"

#include "pyfleet/error.h"
#include "interpreter/archive/package_archive.h"
#include "runtime/src/access.h"

namespace pyfleet {

Package Package::open(const std::string& path) {
  absl::StatusOr<std::shared_ptr<internal::PackageArchive>> archive = internal::PackageArchive::Open(path);
  if (!archive.ok()) {
    const absl::Status& s = archive.status();
    // Archive errors keep torch's wording ("PytorchStreamReader failed ..."); the host API
    // also names the file.
    if (s.message().find(path) == absl::string_view::npos) {
      ThrowIfError(absl::Status(s.code(), path + ": " + std::string(s.message())));
    }
    ThrowIfError(s);
  }
  return internal::Access::makePackage(std::move(archive).value());
}

const std::string& Package::path() const { return archive_->path(); }

size_t Package::recordCount() const { return archive_->recordCount(); }

}  // namespace pyfleet
