// File: interpreter.cpp
//
// pyfleet::Interpreter, Obj and Value over the interpreter library's C ABI. This is
// the runtime's translation unit that includes LibTorch headers (tensors cross the ABI
// as c10::TensorImpl*).
#include "pyfleet/interpreter.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "loader/base/pyfleet_status.h"
#include "loader/library_loader.h"
#include "interpreter/archive/archive_abi.h"
#include "runtime/src/abi_status.h"
#include "runtime/src/interpreter_core.h"

namespace pyfleet {
namespace internal {
namespace {

using TensorImplPtr = c10::intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;

// PyfleetExtensionLoader.load: called by the interpreter with its GIL held.
void* LoadExtension(void* ctx, const char* path, char** error) {
  auto* c = static_cast<ExtensionLoaderContext*>(ctx);
  absl::StatusOr<void*> handle = c->loader->loadExtension(path, c->index);
  if (!handle.ok()) {
    absl::string_view message = handle.status().message();
    *error = DupCString(std::string_view(message.data(), message.size()));
    return nullptr;
  }
  return *handle;
}

// A borrowed ABI view of `value`, valid while `value` lives.
PyfleetValue ToAbiValue(const InterpreterCore& core, const Value& value) {
  PyfleetValue out{};
  const Value::Storage& v = value.storage();
  if (std::holds_alternative<std::monostate>(v)) {
    out.kind = PYFLEET_VALUE_NONE;
  } else if (auto* b = std::get_if<bool>(&v)) {
    out.kind = PYFLEET_VALUE_BOOL;
    out.u.i = *b;
  } else if (auto* i = std::get_if<int64_t>(&v)) {
    out.kind = PYFLEET_VALUE_INT;
    out.u.i = *i;
  } else if (auto* d = std::get_if<double>(&v)) {
    out.kind = PYFLEET_VALUE_DOUBLE;
    out.u.d = *d;
  } else if (auto* s = std::get_if<std::string>(&v)) {
    out.kind = PYFLEET_VALUE_STRING;
    out.u.str.data = s->data();
    out.u.str.size = s->size();
  } else if (auto* bytes = std::get_if<Bytes>(&v)) {
    out.kind = PYFLEET_VALUE_BYTES;
    out.u.str.data = bytes->data.data();
    out.u.str.size = bytes->data.size();
  } else if (auto* t = std::get_if<at::Tensor>(&v)) {
    out.kind = PYFLEET_VALUE_TENSOR;
    out.u.tensor = t->defined() ? t->unsafeGetTensorImpl() : nullptr;  // borrowed
  } else {
    const Obj& obj = *std::get<std::shared_ptr<Obj>>(v);
    core.checkOwner(obj);
    out.kind = PYFLEET_VALUE_OBJECT;
    out.u.obj = static_cast<PyfleetObj*>(obj.handle());
  }
  return out;
}

// Takes ownership of an ABI result value.
Value FromAbiValue(PyfleetValue& v) {
  switch (v.kind) {
    case PYFLEET_VALUE_NONE:
      return Value();
    case PYFLEET_VALUE_BOOL:
      return Value(v.u.i != 0);
    case PYFLEET_VALUE_INT:
      return Value(static_cast<int64_t>(v.u.i));
    case PYFLEET_VALUE_DOUBLE:
      return Value(v.u.d);
    case PYFLEET_VALUE_STRING:
    case PYFLEET_VALUE_BYTES: {
      std::string data(v.u.str.data, v.u.str.size);
      bool is_bytes = v.kind == PYFLEET_VALUE_BYTES;
      std::free(const_cast<char*>(v.u.str.data));
      v = PyfleetValue{};
      return is_bytes ? Value(Bytes{std::move(data)}) : Value(std::move(data));
    }
    case PYFLEET_VALUE_TENSOR: {
      at::Tensor t(TensorImplPtr::reclaim(static_cast<c10::TensorImpl*>(v.u.tensor)));
      v = PyfleetValue{};
      return Value(std::move(t));
    }
    default:
      throw Error(absl::InternalError(absl::StrCat("unexpected ABI value kind ", v.kind)));
  }
}

}  // namespace

absl::Status InterpreterCore::take(PyfleetStatus* status) const { return TakeAbiStatus(abi_, status, name()); }

void InterpreterCore::checkOwner(const Obj& obj) const {
  if (obj.interpreterIndex() != index_) {
    throw Error(absl::InvalidArgumentError(absl::StrCat("object of interpreter ", obj.interpreterIndex(),
                                                        " used with interpreter ", index_)));
  }
}

}  // namespace internal

// ---- Value -------------------------------------------------------------------------

Value::Value(Obj v) : v_(std::make_shared<Obj>(std::move(v))) {}

const char* Value::typeName() const {
  static constexpr const char* kNames[] = {"None", "bool", "int", "float", "str", "bytes", "Tensor", "object"};
  return kNames[v_.index()];
}

namespace {
template <typename T>
const T& Get(const Value::Storage& v, const char* wanted, const Value& self) {
  if (const T* p = std::get_if<T>(&v)) return *p;
  throw Error(absl::InvalidArgumentError(absl::StrCat("expected a value of type ", wanted, ", got ", self.typeName())));
}
}  // namespace

bool Value::toBool() const { return Get<bool>(v_, "bool", *this); }
int64_t Value::toInt() const { return Get<int64_t>(v_, "int", *this); }
double Value::toDouble() const { return Get<double>(v_, "float", *this); }
const std::string& Value::toString() const { return Get<std::string>(v_, "str", *this); }
const Bytes& Value::toBytes() const { return Get<Bytes>(v_, "bytes", *this); }
const at::Tensor& Value::toTensor() const { return Get<at::Tensor>(v_, "Tensor", *this); }
const Obj& Value::toObj() const { return *Get<std::shared_ptr<Obj>>(v_, "object", *this); }

// ---- Obj ---------------------------------------------------------------------------

Obj::Obj(const Obj& other) : core_(other.core_), obj_(other.obj_) {
  if (obj_ != nullptr) core_->abi()->obj_retain(core_->interp(), static_cast<PyfleetObj*>(obj_));
}

Obj& Obj::operator=(const Obj& other) {
  if (this != &other) *this = Obj(other);
  return *this;
}

Obj::Obj(Obj&& other) noexcept : core_(std::move(other.core_)), obj_(std::exchange(other.obj_, nullptr)) {}

Obj& Obj::operator=(Obj&& other) noexcept {
  if (this != &other) {
    if (obj_ != nullptr) core_->abi()->obj_release(core_->interp(), static_cast<PyfleetObj*>(obj_));
    core_ = std::move(other.core_);
    obj_ = std::exchange(other.obj_, nullptr);
  }
  return *this;
}

Obj::~Obj() {
  if (obj_ != nullptr) core_->abi()->obj_release(core_->interp(), static_cast<PyfleetObj*>(obj_));
}

int Obj::interpreterIndex() const { return core_ ? core_->index() : -1; }

Obj Obj::attr(std::string_view name) const {
  PyfleetObj* out = nullptr;
  std::string n(name);
  ThrowIfError(core_->take(core_->abi()->get_attr(core_->interp(), static_cast<PyfleetObj*>(obj_), n.c_str(), &out)));
  return Obj(core_, out);
}

Obj Obj::operator()(const std::vector<Value>& args, const std::vector<std::pair<std::string, Value>>& kwargs) const {
  std::vector<PyfleetValue> abi_args;
  abi_args.reserve(args.size());
  for (const Value& a : args) abi_args.push_back(internal::ToAbiValue(*core_, a));
  std::vector<PyfleetKwarg> abi_kwargs;
  abi_kwargs.reserve(kwargs.size());
  for (const auto& [name, value] : kwargs) {
    abi_kwargs.push_back(PyfleetKwarg{name.c_str(), internal::ToAbiValue(*core_, value)});
  }
  PyfleetObj* out = nullptr;
  ThrowIfError(core_->take(core_->abi()->call(core_->interp(), static_cast<PyfleetObj*>(obj_), abi_args.data(),
                                              abi_args.size(), abi_kwargs.data(), abi_kwargs.size(), &out)));
  return Obj(core_, out);
}

Obj Obj::item(const Value& key) const {
  PyfleetValue k = internal::ToAbiValue(*core_, key);
  PyfleetObj* out = nullptr;
  ThrowIfError(core_->take(core_->abi()->get_item(core_->interp(), static_cast<PyfleetObj*>(obj_), &k, &out)));
  return Obj(core_, out);
}

Value Obj::toValue() const {
  PyfleetValue v{};
  ThrowIfError(core_->take(core_->abi()->to_value(core_->interp(), static_cast<PyfleetObj*>(obj_), &v)));
  return internal::FromAbiValue(v);
}

std::string Obj::repr() const {
  char* text = nullptr;
  ThrowIfError(core_->take(core_->abi()->repr(core_->interp(), static_cast<PyfleetObj*>(obj_), &text)));
  std::string out(text);
  std::free(text);
  return out;
}

// ---- Interpreter -------------------------------------------------------------------

std::unique_ptr<Interpreter> Interpreter::create(std::shared_ptr<NativeLibraries> libraries,
                                                 const InterpreterConfig& config) {
  if (!libraries) throw Error(absl::InvalidArgumentError("Interpreter::create: libraries is null"));
  const int index = libraries->allocateIndex();
  auto core = std::make_shared<internal::InterpreterCore>(libraries, index);
  absl::StatusOr<void*> handle = libraries->loader().loadInterpreterLibrary(libraries->interpreterLibrary(), index);
  ThrowIfError(handle.status());
  auto abi_fn = reinterpret_cast<PyfleetInterpreterAbiFn>(dlsym(*handle, PYFLEET_INTERPRETER_ABI_SYMBOL));
  if (abi_fn == nullptr) {
    const char* err = dlerror();
    throw Error(absl::FailedPreconditionError(absl::StrCat(libraries->interpreterLibrary(), ": no symbol ",
                                                           PYFLEET_INTERPRETER_ABI_SYMBOL, ": ",
                                                           err ? err : "?")));
  }
  const PyfleetInterpreterAbi* abi = abi_fn();
  if (abi == nullptr || abi->abi_version != PYFLEET_INTERPRETER_ABI_VERSION ||
      abi->struct_size < sizeof(PyfleetInterpreterAbi)) {
    throw Error(absl::FailedPreconditionError(absl::StrCat(
        libraries->interpreterLibrary(), ": interpreter ABI version ", abi ? abi->abi_version : 0, " (table of ",
        abi ? abi->struct_size : 0, " bytes), host expects version ", PYFLEET_INTERPRETER_ABI_VERSION, " (",
        sizeof(PyfleetInterpreterAbi), " bytes)")));
  }
  core->abi_ = abi;
  core->loader_context_ = internal::ExtensionLoaderContext{&libraries->loader(), index};

  std::vector<std::string> sys_path = config.sys_path.empty() ? DefaultSysPath() : config.sys_path;
  sys_path.insert(sys_path.end(), config.extra_sys_path.begin(), config.extra_sys_path.end());
  std::vector<const char*> path_ptrs;
  for (const std::string& p : sys_path) path_ptrs.push_back(p.c_str());
  std::vector<PyfleetModuleSource> modules;
  for (const ModuleSource& m : config.modules) {
    modules.push_back(PyfleetModuleSource{m.name.c_str(), m.source.c_str(), m.is_package ? 1 : 0});
  }
  PyfleetInterpConfig abi_config{};
  abi_config.struct_size = sizeof(PyfleetInterpConfig);
  abi_config.index = index;
  abi_config.sys_path = path_ptrs.data();
  abi_config.sys_path_len = path_ptrs.size();
  abi_config.modules = modules.data();
  abi_config.modules_len = modules.size();
  abi_config.extension_loader = PyfleetExtensionLoader{&core->loader_context_, internal::LoadExtension};
  ThrowIfError(core->take(abi->create(&abi_config, &core->interp_)));
  return std::unique_ptr<Interpreter>(new Interpreter(std::move(core)));
}

Interpreter::~Interpreter() {
  if (core_ && core_->interp() != nullptr) {
    // Errors cannot be thrown from here; a failed finalize leaves the copy inert anyway.
    core_->abi()->status_free(core_->abi()->finalize(core_->interp()));
  }
}

int Interpreter::index() const { return core_->index(); }

void Interpreter::run(std::string_view code, std::string_view filename) {
  std::string c(code), f(filename);
  ThrowIfError(core_->take(core_->abi()->run(core_->interp(), c.c_str(), f.c_str())));
}

Obj Interpreter::eval(std::string_view expression) {
  std::string e(expression);
  PyfleetObj* out = nullptr;
  ThrowIfError(core_->take(core_->abi()->eval(core_->interp(), e.c_str(), &out)));
  return Obj(core_, out);
}

Obj Interpreter::import(std::string_view module) {
  std::string m(module);
  PyfleetObj* out = nullptr;
  ThrowIfError(core_->take(core_->abi()->import_module(core_->interp(), m.c_str(), &out)));
  return Obj(core_, out);
}

Obj Interpreter::global(std::string_view module, std::string_view name) { return import(module).attr(name); }

Obj Interpreter::toObj(const Value& value) {
  PyfleetValue v = internal::ToAbiValue(*core_, value);
  PyfleetObj* out = nullptr;
  ThrowIfError(core_->take(core_->abi()->from_value(core_->interp(), &v, &out)));
  return Obj(core_, out);
}

Obj Interpreter::packageImporter(const Package& package) {
  PyfleetArchive archive = internal::MakeArchiveAbi(package.archive());  // holds one reference
  PyfleetObj* out = nullptr;
  PyfleetStatus* status = core_->abi()->make_package_importer(core_->interp(), &archive, &out);
  archive.release(archive.ctx);  // the importer retained its own
  ThrowIfError(core_->take(status));
  return Obj(core_, out);
}

void Interpreter::detachThread() { core_->abi()->detach_thread(core_->interp()); }

}  // namespace pyfleet
