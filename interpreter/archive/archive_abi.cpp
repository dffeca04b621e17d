// File: archive_abi.cpp — see archive_abi.h.
#include "interpreter/archive/archive_abi.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>

#include "loader/base/pyfleet_status.h"

namespace pyfleet::internal {
namespace {

// The ctx of a PyfleetArchive made here.
struct ArchiveCtx {
  std::atomic<int64_t> refs{1};
  std::shared_ptr<const PackageArchive> archive;
};

// Every callback below is noexcept (PYFLEET_NOEXCEPT in interpreter_abi.h): the importer
// calls them from inside CPython frames, where a C++ exception must never unwind
// (STYLE.md §7.2). The ones that allocate catch everything and fail by return value.

void Retain(void* ctx) noexcept { static_cast<ArchiveCtx*>(ctx)->refs.fetch_add(1, std::memory_order_relaxed); }

void Release(void* ctx) noexcept {
  auto* c = static_cast<ArchiveCtx*>(ctx);
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete c;  // destructors do not throw
}

const char* Path(void* ctx) noexcept { return static_cast<ArchiveCtx*>(ctx)->archive->path().c_str(); }

size_t RecordCount(void* ctx) noexcept { return static_cast<ArchiveCtx*>(ctx)->archive->recordCount(); }

const char* RecordName(void* ctx, size_t index) noexcept {
  const PackageArchive& a = *static_cast<ArchiveCtx*>(ctx)->archive;
  return index < a.recordCount() ? a.record(index).name.c_str() : nullptr;
}

int64_t Find(void* ctx, const char* name) noexcept {
  if (name == nullptr) return -1;
  try {
    std::optional<size_t> i = static_cast<ArchiveCtx*>(ctx)->archive->find(name);
    return i.has_value() ? static_cast<int64_t>(*i) : -1;
  } catch (...) {
    return -1;  // the contract has no error channel: "not found"
  }
}

void ReleaseView(void* owner) noexcept { delete static_cast<std::shared_ptr<const void>*>(owner); }

PyfleetStatus* Read(void* ctx, size_t index, PyfleetRecordView* out) noexcept {
  try {
    absl::StatusOr<RecordData> data = static_cast<ArchiveCtx*>(ctx)->archive->read(index);
    if (!data.ok()) return PyfleetStatusFromStatus(data.status());
    auto owner = std::make_unique<std::shared_ptr<const void>>(data->owner());
    out->data = data->data();
    out->size = data->size();
    out->owner = owner.release();
    out->release = &ReleaseView;
    return nullptr;
  } catch (const std::bad_alloc&) {  // the handlers allocate only with malloc (NewPyfleetStatus)
    return NewPyfleetStatus(PYFLEET_RESOURCE_EXHAUSTED, "out of memory reading a package record");
  } catch (const std::exception& e) {
    return NewPyfleetStatus(PYFLEET_INTERNAL, e.what());
  } catch (...) {
    return NewPyfleetStatus(PYFLEET_INTERNAL, "reading a record failed with an unknown C++ exception");
  }
}

}  // namespace

PyfleetArchive MakeArchiveAbi(std::shared_ptr<const PackageArchive> archive) {
  PyfleetArchive abi{};
  abi.struct_size = sizeof(PyfleetArchive);
  abi.ctx = new ArchiveCtx{{1}, std::move(archive)};
  abi.retain = &Retain;
  abi.release = &Release;
  abi.path = &Path;
  abi.record_count = &RecordCount;
  abi.record_name = &RecordName;
  abi.find = &Find;
  abi.read = &Read;
  return abi;
}

const PackageArchive* ArchiveFromAbi(const PyfleetArchive* archive) {
  if (archive == nullptr || archive->read != &Read) return nullptr;
  return static_cast<ArchiveCtx*>(archive->ctx)->archive.get();
}

}  // namespace pyfleet::internal
