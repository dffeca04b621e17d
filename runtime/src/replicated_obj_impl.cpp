// File: replicated_obj_impl.cpp — see replicated_obj_impl.h.
#include "runtime/src/replicated_obj_impl.h"

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "runtime/src/access.h"
#include "runtime/src/interpreter_core.h"
#include "runtime/src/ivalue_bridge.h"
#include "runtime/src/manager_state.h"

namespace pyfleet::internal {

ReplicatedObjImpl::ReplicatedObjImpl(std::shared_ptr<ManagerState> manager, Recipe recipe)
    : manager_(std::move(manager)), recipe_(std::move(recipe)), slots_(new Slot[manager_->size()]) {}

ReplicatedObjImpl::~ReplicatedObjImpl() = default;

std::shared_ptr<const Obj> ReplicatedObjImpl::copy(int position) const {
  Slot& slot = slots_[position];
  {
    absl::ReaderMutexLock lock(&slot.mu);
    if (slot.obj != nullptr) return slot.obj;
  }
  absl::MutexLock lock(&slot.mu);  // held while the copy is made: it is made once
  if (slot.obj == nullptr) {
    slot.obj = std::make_shared<const Obj>(materialize(position));
    materializations_.fetch_add(1, std::memory_order_relaxed);
  }
  return slot.obj;
}

Obj ReplicatedObjImpl::materialize(int position) const {
  if (const auto* from_package = std::get_if<FromPackage>(&recipe_)) {
    Obj importer = manager_->importer(position, from_package->archive);
    std::vector<c10::IValue> args = {c10::IValue(from_package->module), c10::IValue(from_package->file)};
    if (!from_package->safe) return importer.attr("load_pickle")(std::move(args));
    c10::List<std::string> allowed;
    for (const std::string& g : from_package->allowed_globals) allowed.push_back(g);
    return importer.attr("load_pickle").callKwargs(std::move(args), {{"safe", c10::IValue(true)},
                                                                     {"allowed_globals", c10::IValue(allowed)}});
  }
  const FromPickle& pickle = std::get<FromPickle>(recipe_);
  Interpreter& interp = manager_->interpreter(position);
  std::vector<Obj> importers;
  for (const auto& archive : pickle.packages) importers.push_back(manager_->importer(position, archive));
  Obj loads = interp.global("_pyfleet_movable", "loads");
  AbiValues values(*Access::core(interp));
  std::vector<PyfleetValue> args = {values.bytes(pickle.data), values.tensors(pickle.storages),
                                    values.strings(pickle.dtypes), values.objects(importers)};
  return CallReturningObj(loads, args);
}

c10::IValue ReplicatedObjImpl::call(int position, const c10::IValue* args, size_t nargs,
                                    const std::unordered_map<std::string, c10::IValue>* kwargs) const {
  std::shared_ptr<const Obj> self = copy(position);
  return CallReturningIValue(*self, args, nargs, kwargs);
}

void ReplicatedObjImpl::unload(int position) {
  const int first = position < 0 ? 0 : position;
  const int last = position < 0 ? static_cast<int>(manager_->size()) - 1 : position;
  for (int i = first; i <= last; ++i) {
    std::shared_ptr<const Obj> dropped;
    {
      absl::MutexLock lock(&slots_[i].mu);
      dropped = std::move(slots_[i].obj);
    }
    // `dropped` is released here, outside the lock (releasing takes the GIL).
  }
}

size_t ReplicatedObjImpl::loadedCopies() const {
  size_t n = 0;
  for (size_t i = 0; i < manager_->size(); ++i) {
    absl::ReaderMutexLock lock(&slots_[i].mu);
    if (slots_[i].obj != nullptr) ++n;
  }
  return n;
}

FromPickle PickleForReplication(ManagerState& manager, int position, const Obj& obj) {
  Interpreter& interp = manager.interpreter(position);
  FromPickle out;
  std::vector<Obj> importers;
  for (auto& [archive, importer] : manager.importers(position)) {
    out.packages.push_back(archive);
    importers.push_back(std::move(importer));
  }
  Obj dumps = interp.global("_pyfleet_movable", "dumps");
  AbiValues values(*Access::core(interp));
  std::vector<PyfleetValue> args = {values.add(obj), values.objects(importers)};
  c10::IValue result = CallReturningIValue(dumps, args);
  const auto& parts = result.toTupleRef().elements();  // (data, storages, dtypes)
  out.data = parts[0].toStringRef();
  for (const c10::IValue& storage : parts[1].toListRef()) out.storages.push_back(storage.toTensor());
  for (const c10::IValue& dtype : parts[2].toListRef()) out.dtypes.push_back(dtype.toStringRef());
  return out;
}

}  // namespace pyfleet::internal
