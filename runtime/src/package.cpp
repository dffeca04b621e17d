// File: package.cpp — pyfleet::Package (package.h).
#include "pyfleet/package.h"

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "interpreter/archive/package_archive.h"
#include "pyfleet/error.h"
#include "runtime/src/access.h"
#include "runtime/src/manager_state.h"
#include "runtime/src/replicated_obj_impl.h"

namespace pyfleet {

using internal::Access;

Package Package::open(const std::string& path) { return open(path, PackageOptions{}); }

Package Package::open(const std::string& path, const PackageOptions& options) {
  // A pinned file is hashed before it is parsed: Note [Pinned packages] in
  // interpreter/archive/package_archive.h.
  absl::StatusOr<std::shared_ptr<internal::PackageArchive>> archive =
      internal::PackageArchive::Open(path, /*crc_cache=*/nullptr, options.sha256);
  if (!archive.ok()) {
    const absl::Status& s = archive.status();
    // Archive errors keep torch's wording ("PytorchStreamReader failed ..."); the host API
    // also names the file.
    if (s.message().find(path) == absl::string_view::npos) {
      ThrowIfError(absl::Status(s.code(), path + ": " + std::string(s.message())));
    }
    ThrowIfError(s);
  }
  return Access::makePackage(std::move(archive).value());
}

const std::string& Package::path() const { return archive_->path(); }

size_t Package::recordCount() const { return archive_->recordCount(); }

internal::ManagerState& Package::manager(const char* operation) const {
  if (manager_ == nullptr) {
    throw Error(absl::FailedPreconditionError(absl::StrCat(
        "Package::", operation, " needs a package from InterpreterManager::loadPackage (", archive_->path(),
        " was opened with Package::open, which has no interpreters)")));
  }
  return *manager_;
}

ReplicatedObj Package::loadPickle(const std::string& module, const std::string& file) {
  return loadPickle(module, file, LoadOptions{});
}

ReplicatedObj Package::loadPickle(const std::string& module, const std::string& file, const LoadOptions& options) {
  internal::ManagerState& state = manager("loadPickle");
  internal::FromPackage recipe{archive_, module, file};
  recipe.safe = options.safe || !options.allowed_globals.empty();
  recipe.allowed_globals = options.allowed_globals;
  auto impl = std::make_shared<internal::ReplicatedObjImpl>(manager_, std::move(recipe));
  // Load once now, so that a missing record or a bad pickle fails here.
  const int position = state.balancer().acquire();
  absl::Cleanup release = [&] { state.balancer().release(position); };
  impl->copy(position);
  return Access::makeReplicated(std::move(impl));
}

std::string Package::loadText(const std::string& module, const std::string& file) {
  InterpreterSession session = acquireSession();
  return session.self.attr("load_text")({c10::IValue(module), c10::IValue(file)}).toIValue().toStringRef();
}

std::string Package::loadBinary(const std::string& module, const std::string& file) {
  InterpreterSession session = acquireSession();
  // bytes cross as an IValue string holding the same bytes (see Note [IValue bridge]).
  return session.self.attr("load_binary")({c10::IValue(module), c10::IValue(file)}).toIValue().toStringRef();
}

InterpreterSession Package::acquireSession() {
  internal::ManagerState& state = manager("acquireSession");
  const int position = state.balancer().acquire();
  InterpreterSession session = Access::makeSession(manager_, &state.interpreter(position), position);
  session.self = state.importer(position, archive_);
  return session;
}

ReplicatedObj Package::createMovable(Obj obj, InterpreterSession* session) {
  manager("createMovable");
  if (session == nullptr) throw Error(absl::InvalidArgumentError("createMovable: the session is null"));
  return session->createMovable(std::move(obj));
}

}  // namespace pyfleet
