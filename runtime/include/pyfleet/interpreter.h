// File: interpreter.h
//
// pyfleet::Interpreter: one isolated CPython interpreter (own GIL, own sys.modules, own
// torch._C) inside this process, sharing the process's single LibTorch.
//
//   auto libs = pyfleet::NativeLibraries::create();
//   auto interp = pyfleet::Interpreter::create(libs);
//   interp->run("import torch\ndef double(t): return t * 2\n");
//   at::Tensor y = interp->global("__main__", "double")({at::ones({2})}).toTensor();
//
// All methods are thread-safe: any host thread may use any interpreter; calls into one
// interpreter serialize on its GIL. Errors throw pyfleet::Error (error.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "pyfleet/error.h"
#include "pyfleet/export.h"
#include "pyfleet/package.h"

namespace pyfleet {

namespace internal {
class InterpreterCore;
class LibraryLoader;
}  // namespace internal

class Obj;

// Raw bytes (Python `bytes`), distinct from text.
struct Bytes {
  std::string data;
};

// A value that crosses into or out of an interpreter. Tensors cross without copies
// (see Note [Tensor handoff] in interpreter/src/tensor_bridge.h).
class PYFLEET_API Value {
 public:
  using Storage = std::variant<std::monostate, bool, int64_t, double, std::string, Bytes, at::Tensor,
                               std::shared_ptr<Obj>>;
  Value() = default;
  Value(bool v) : v_(v) {}
  Value(int v) : v_(static_cast<int64_t>(v)) {}
  Value(int64_t v) : v_(v) {}
  Value(double v) : v_(v) {}
  Value(const char* v) : v_(std::string(v)) {}
  Value(std::string v) : v_(std::move(v)) {}
  Value(Bytes v) : v_(std::move(v)) {}
  Value(at::Tensor v) : v_(std::move(v)) {}
  Value(Obj v);

  bool isNone() const { return std::holds_alternative<std::monostate>(v_); }
  bool isTensor() const { return std::holds_alternative<at::Tensor>(v_); }
  // Value::toX()
  //
  // The held value; pyfleet::Error (INVALID_ARGUMENT) naming both types on a mismatch.
  bool toBool() const;
  int64_t toInt() const;
  double toDouble() const;
  const std::string& toString() const;
  const Bytes& toBytes() const;
  const at::Tensor& toTensor() const;
  const Obj& toObj() const;
  // "None", "bool", "int", "float", "str", "bytes", "Tensor" or "object".
  const char* typeName() const;

  const Storage& storage() const { return v_; }

 private:
  Storage v_;
};

// A strong reference to a Python object living in one interpreter. Copyable; the
// object is released (under its interpreter's GIL) when the last copy goes. Using an
// Obj with another interpreter's methods throws INVALID_ARGUMENT naming both.
class PYFLEET_API Obj {
 public:
  Obj(const Obj& other);
  Obj& operator=(const Obj& other);
  Obj(Obj&& other) noexcept;
  Obj& operator=(Obj&& other) noexcept;
  ~Obj();

  // Obj::attr()
  //
  // getattr(self, name).
  Obj attr(std::string_view name) const;
  // Obj::operator()
  //
  // self(*args, **kwargs).
  Obj operator()(const std::vector<Value>& args = {},
                 const std::vector<std::pair<std::string, Value>>& kwargs = {}) const;
  // Obj::item()
  //
  // self[key].
  Obj item(const Value& key) const;
  // Obj::toValue()
  //
  // None, bool, int, float, str, bytes or torch.Tensor as a Value; other types throw
  // INVALID_ARGUMENT naming the Python type.
  Value toValue() const;
  at::Tensor toTensor() const { return toValue().toTensor(); }
  int64_t toInt() const { return toValue().toInt(); }
  double toDouble() const { return toValue().toDouble(); }
  std::string toString() const { return toValue().toString(); }
  bool toBool() const { return toValue().toBool(); }
  std::string repr() const;
  // The index of the interpreter this object lives in.
  int interpreterIndex() const;

  // Internal: the ABI handle. Do not use.
  void* handle() const { return obj_; }

 private:
  friend class Interpreter;
  friend class internal::InterpreterCore;
  Obj(std::shared_ptr<internal::InterpreterCore> core, void* obj) : core_(std::move(core)), obj_(obj) {}
  std::shared_ptr<internal::InterpreterCore> core_;
  void* obj_ = nullptr;  // PyfleetObj*, a strong reference
};

// A module whose source the host injects into an interpreter, importable by name.
struct ModuleSource {
  std::string name;
  std::string source;
  bool is_package = false;
};

struct InterpreterConfig {
  // sys.path; empty means DefaultSysPath().
  std::vector<std::string> sys_path;
  // Appended to sys.path.
  std::vector<std::string> extra_sys_path;
  // Modules importable by name (served from memory).
  std::vector<ModuleSource> modules;
};

// Debian python3's sys.path: stdlib, lib-dynload, the dist-packages folders.
PYFLEET_API std::vector<std::string> DefaultSysPath();

// The process-wide machinery interpreters share: the interpreter library, a private
// workspace for per-interpreter library copies, and the patched-once templates of
// every native library (ARCHITECTURE.md §7). Create one and pass it to every
// Interpreter; it lives as long as any of them.
class PYFLEET_API NativeLibraries {
 public:
  // NativeLibraries::create()
  //
  // `interpreter_library` "" means libpyfleet_interpreter.so next to libpyfleet.so,
  // or $PYFLEET_INTERPRETER_LIBRARY if set. Throws pyfleet::Error.
  static std::shared_ptr<NativeLibraries> create(std::string interpreter_library = "");
  ~NativeLibraries();

  const std::string& interpreterLibrary() const { return interpreter_library_; }
  // Seconds spent patching templates and instantiating copies, and how many.
  struct Stats {
    int templates_built = 0;
    double template_seconds = 0;
    int copies_loaded = 0;
    double copy_seconds = 0;
    // Bytes of library copies' code and read-only data backed by the original files'
    // shared pages instead of private ones.
    uint64_t shared_bytes = 0;
    // Symbol relocations of library copies resolved once per process instead of looked
    // up by the dynamic linker in every copy.
    int self_bound_relocations = 0;
  };
  Stats stats() const;

  // Internal.
  internal::LibraryLoader& loader() { return *loader_; }
  int allocateIndex();

 private:
  NativeLibraries() = default;
  std::string interpreter_library_;
  std::unique_ptr<internal::LibraryLoader> loader_;
  std::atomic<int> next_index_{0};
};

class PYFLEET_API Interpreter {
 public:
  // Interpreter::create()
  //
  // Starts a new interpreter (a private copy of the interpreter library). Throws
  // pyfleet::Error.
  static std::unique_ptr<Interpreter> create(std::shared_ptr<NativeLibraries> libraries,
                                             const InterpreterConfig& config = {});
  // Finalizes the interpreter (Py_FinalizeEx). Obj handles still alive become inert;
  // tensors the host holds stay valid. The library copy stays mapped (ARCHITECTURE §11).
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  int index() const;
  // Executes `code` in __main__.
  void run(std::string_view code, std::string_view filename = "<pyfleet>");
  // Evaluates an expression in __main__.
  Obj eval(std::string_view expression);
  // import_module(name).
  Obj import(std::string_view module);
  // getattr(import_module(module), name).
  Obj global(std::string_view module, std::string_view name);
  // A Python object for `value` (a tensor is wrapped without a copy).
  Obj toObj(const Value& value);
  // A PackageImporter (the C++ importer, used like torch.package.PackageImporter) over
  // `package` in this interpreter. Storages it loads alias the package's one mapping;
  // see Note [Shared weights and in-place writes] in package.h.
  Obj packageImporter(const Package& package);
  // Forgets the calling thread's persistent thread state for this interpreter; call it
  // from a thread about to exit after using the interpreter.
  void detachThread();

  // Internal.
  const std::shared_ptr<internal::InterpreterCore>& core() const { return core_; }

 private:
  explicit Interpreter(std::shared_ptr<internal::InterpreterCore> core) : core_(std::move(core)) {}
  std::shared_ptr<internal::InterpreterCore> core_;
};

}  // namespace pyfleet
