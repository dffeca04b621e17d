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

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyfleet/error.h"
#include "pyfleet/export.h"
#include "pyfleet/interpreter_session.h"
#include "pyfleet/native_libraries.h"
#include "pyfleet/obj.h"
#include "pyfleet/package.h"
#include "pyfleet/security_policy.h"
#include "pyfleet/value.h"

namespace pyfleet {

// A module whose source the host injects into an interpreter, importable by name.
struct ModuleSource {
  std::string name;
  std::string source;
  bool is_package = false;
};

// Which allocator an interpreter's CPython uses for Python objects.
enum class PythonAllocator {
  // pymalloc, unless the environment variable PYFLEET_PYTHON_MALLOC is "malloc" (then
  // kMalloc; the interpreter ignores PYTHONMALLOC). Another value than malloc, pymalloc
  // or empty fails Interpreter::create with INVALID_ARGUMENT.
  kDefault,
  // CPython's raw malloc for every object (what PYTHONMALLOC=malloc does for python3):
  // slower, but AddressSanitizer then sees overflows and uses after free of Python
  // objects that pymalloc's arenas hide (scripts/test-sanitizers sets the variable).
  kMalloc,
};

struct InterpreterConfig {
  // sys.path; empty means DefaultSysPath().
  std::vector<std::string> sys_path;
  // Appended to sys.path.
  std::vector<std::string> extra_sys_path;
  // Modules importable by name (served from memory).
  std::vector<ModuleSource> modules;
  // Installed right after CPython starts, before create() returns; see
  // security_policy.h. nullopt: none.
  std::optional<SecurityPolicy> security_policy;
  // See PythonAllocator.
  PythonAllocator python_allocator = PythonAllocator::kDefault;
};

// Debian python3's sys.path: stdlib, lib-dynload, the dist-packages folders.
PYFLEET_API std::vector<std::string> DefaultSysPath();

class PYFLEET_API Interpreter {
 public:
  // Interpreter::create()
  //
  // Starts a new interpreter (a private copy of the interpreter library). Throws
  // pyfleet::Error.
  static std::unique_ptr<Interpreter> create(std::shared_ptr<NativeLibraries> libraries,
                                             const InterpreterConfig& config = {});
  // Finalizes the interpreter (Py_FinalizeEx) once the calls in flight have returned.
  // Obj handles still alive become inert; tensors the host holds stay valid. The library
  // copy stays mapped (ARCHITECTURE §11).
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;
  // Movable (InterpreterManager keeps its interpreters in one array); a moved-from
  // Interpreter may only be destroyed.
  Interpreter(Interpreter&& other) noexcept = default;
  Interpreter& operator=(Interpreter&&) = delete;

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
  // see the in-place write paragraph of package.h.
  Obj packageImporter(const Package& package);
  // Forgets the calling thread's persistent thread state for this interpreter; call it
  // from a thread about to exit after using the interpreter.
  void detachThread();

  // Interpreter::acquireSession()
  //
  // A session on this interpreter (torch::deploy's name). For an interpreter of an
  // InterpreterManager the session can also replicate objects; a standalone one's
  // cannot (FAILED_PRECONDITION). Not counted by the load balancer.
  InterpreterSession acquireSession() const;

 private:
  friend struct internal::Access;
  explicit Interpreter(std::shared_ptr<internal::InterpreterCore> core) : core_(std::move(core)) {}
  std::shared_ptr<internal::InterpreterCore> core_;
};

}  // namespace pyfleet
