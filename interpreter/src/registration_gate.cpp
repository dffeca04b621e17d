// File: registration_gate.cpp
//
// The operator definitions a private copy of libtorch_python (or of any extension) makes
// with the process-wide dispatcher, taken over through Note [Redirected references]
// (loader/library_loader.h).
//
// Note [One definition per operator]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Every interpreter loads its own copy of libtorch_python, and every copy runs the same
// static initializers. torch 2.x's define an operator (TORCH_LIBRARY_FRAGMENT(inductor)
// m.def("resize_storage_bytes_(Tensor variable, SymInt new_size) -> ()") in
// torch/csrc/inductor/resize_storage_bytes.cpp), and c10's dispatcher throws on a second
// definition of one operator: the second interpreter's dlopen would end in
// std::terminate. Here, a copy's torch::Library::_def is redirected to a gate that skips
// the definition when the dispatcher already has one for that operator name (the first
// interpreter's copy made it: operators are process-wide, one definition serves every
// interpreter) and passes every other call on unchanged, so a real conflict (another
// schema under the name, say) still fails as it does in stock torch. A definition torch
// would only verify (wait for the interpreter it calls main to make it) is made by
// whichever interpreter comes first. Implementations
// (_impl) are not gated: a second registration of a kernel only overrides it, with a
// warning that Note [Duplicate registration warning] drops. Definitions are made through
// a torch::Library of pyfleet's that is never destroyed (PermanentLibrary): the library
// a definition came through may be a Python object of an interpreter finalized while the
// others still use the operator, and destroying it would undo the definition.
//
// The same holds for torch 2.x's named handlers of its control plane
// (c10d::control_plane::RegisterHandler dumpTraceback{"dump_traceback", ...} in
// torch/csrc/distributed/c10d/control_plane/PythonHandlers.cpp): the process-wide
// registry throws std::invalid_argument("Handler dump_traceback already registered") for
// the second copy. The gate keeps the first copy's handler.
//
// Static initializers run under the dynamic linker's lock, so two copies never race
// between the look-up and the definition. torch 1.13's copies define no operator (their
// one registration, aten::get_gradients, is an implementation), and 1.13's _def has
// other signatures: the gate exists only for torch 2.x.
#include <torch/version.h>

#if TORCH_VERSION_MAJOR >= 2

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

// torch/csrc/distributed/c10d/control_plane/Handlers.hpp (not among Debian's headers):
// only what the gate passes through.
namespace c10d::control_plane {
class Request;
class Response;
using HandlerFunc = std::function<void(const Request&, Response&)>;
}  // namespace c10d::control_plane

namespace {

using torch::Library;
using Tags = std::vector<at::Tag>;
using NameOrSchema = std::variant<c10::OperatorName, c10::FunctionSchema>;

// `name` with the library's namespace where it has none, as _def gives it one.
c10::OperatorName Resolved(const Library& lib, const c10::OperatorName& name) {
  if (name.name.find("::") != std::string::npos) return name;
  std::string text = name.name;
  if (!name.overload_name.empty()) text += "." + name.overload_name;
  return lib._resolve(text.c_str());
}

bool AlreadyDefined(const Library& lib, const c10::OperatorName& name) {
  return c10::Dispatcher::singleton().findSchema(Resolved(lib, name)).has_value();
}

// A FRAGMENT library of namespace `ns` that is never destroyed, so the definitions it
// makes are never undone: a torch::Library deregisters what it registered when it dies,
// and the one a definition came through may be a Python object of an interpreter that
// is finalized while the others still hold the operator's handle.
Library* PermanentLibrary(const std::string& ns) {
  static std::mutex mu;
  static auto* libraries = new std::map<std::string, Library*>();  // leaked on purpose
  std::lock_guard<std::mutex> lock(mu);
  Library*& lib = (*libraries)[ns];
  if (lib == nullptr) lib = new Library(Library::FRAGMENT, ns, std::nullopt, "<pyfleet registration gate>", 0);
  return lib;
}

std::string NamespaceOf(const Library& lib, const c10::OperatorName& name) {
  const c10::OperatorName resolved = Resolved(lib, name);  // getNamespace() views into it
  const std::optional<std::string_view> ns = resolved.getNamespace();
  return ns ? std::string(*ns) : std::string();
}

// Runs `define` (a real _def on a permanent library); if another interpreter defined the
// operator between our look-up and now, the dispatcher's "registered multiple times"
// error is that race, and the operator is defined: fine.
template <typename Define>
void DefineOnce(const Library& lib, const c10::OperatorName& name, Define define) {
  try {
    define();
  } catch (const c10::Error&) {
    if (!AlreadyDefined(lib, name)) throw;
  }
}

}  // namespace

extern "C++" {

// LibTorch's own definitions (private members of torch::Library, called as the free
// functions they are in the ABI: `this` first). External: libtorch_cpu defines them.
Library& RealDefSchema(Library* self, c10::FunctionSchema&& schema, c10::OperatorName* out_name,
                       const Tags& tags, torch::_RegisterOrVerify rv)
    __asm__("_ZNR5torch7Library4_defEON3c1014FunctionSchemaEPNS1_12OperatorNameERKSt6vectorIN2at3TagESaIS8_EENS_17_RegisterOrVerifyE");
Library& RealDefWithKernel(Library* self, NameOrSchema&& name_or_schema, torch::CppFunction&& f,
                           const Tags& tags)
    __asm__("_ZNR5torch7Library4_defEOSt7variantIJN3c1012OperatorNameENS2_14FunctionSchemaEEEONS_11CppFunctionERKSt6vectorIN2at3TagESaISB_EE");

// PYFLEET_REDIRECT_PREFIX + the mangled names above (pyfleet/interpreter_abi.h).
__attribute__((visibility("default"))) Library& GateDefSchema(Library* self, c10::FunctionSchema&& schema,
                                                              c10::OperatorName* out_name, const Tags& tags,
                                                              torch::_RegisterOrVerify rv)
    __asm__("pyfleet_redirect__ZNR5torch7Library4_defEON3c1014FunctionSchemaEPNS1_12OperatorNameERKSt6vectorIN2at3TagESaIS8_EENS_17_RegisterOrVerifyE");
__attribute__((visibility("default"))) Library& GateDefWithKernel(Library* self, NameOrSchema&& name_or_schema,
                                                                  torch::CppFunction&& f, const Tags& tags)
    __asm__("pyfleet_redirect__ZNR5torch7Library4_defEOSt7variantIJN3c1012OperatorNameENS2_14FunctionSchemaEEEONS_11CppFunctionERKSt6vectorIN2at3TagESaISB_EE");

Library& GateDefSchema(Library* self, c10::FunctionSchema&& schema, c10::OperatorName* out_name,
                       const Tags& tags, torch::_RegisterOrVerify rv) {
  // VERIFY is what torch's Python binding asks for in every interpreter but the one it
  // calls "main" (torch/csrc/utils/python_dispatch.cpp): wait until main has defined
  // the operator, or fail after a timeout ("Expected main interpreter to define ...").
  // pyfleet has no main interpreter: whichever defines an operator first does.
  const c10::OperatorName name = schema.operator_name();
  if (!AlreadyDefined(*self, name)) {
    Library* permanent = PermanentLibrary(NamespaceOf(*self, name));
    DefineOnce(*self, name, [&] {
      RealDefSchema(permanent, std::move(schema), nullptr, tags, torch::_RegisterOrVerify::REGISTER);
    });
  }
  if (out_name != nullptr) *out_name = Resolved(*self, name);
  return *self;  // Note [One definition per operator]
}

Library& GateDefWithKernel(Library* self, NameOrSchema&& name_or_schema, torch::CppFunction&& f,
                           const Tags& tags) {
  const c10::OperatorName& name = std::holds_alternative<c10::OperatorName>(name_or_schema)
                                      ? std::get<c10::OperatorName>(name_or_schema)
                                      : std::get<c10::FunctionSchema>(name_or_schema).operator_name();
  if (!AlreadyDefined(*self, name)) {
    const c10::OperatorName copy = name;
    Library* permanent = PermanentLibrary(NamespaceOf(*self, copy));
    DefineOnce(*self, copy, [&] { RealDefWithKernel(permanent, std::move(name_or_schema), std::move(f), tags); });
  }
  return *self;  // Note [One definition per operator]
}

void RealRegisterHandler(const std::string& name, c10d::control_plane::HandlerFunc f)
    __asm__("_ZN4c10d13control_plane15registerHandlerERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEESt8functionIFvRKNS0_7RequestERNS0_8ResponseEEE");
std::vector<std::string> RealHandlerNames() __asm__("_ZN4c10d13control_plane15getHandlerNamesB5cxx11Ev");

__attribute__((visibility("default"))) void GateRegisterHandler(const std::string& name,
                                                                c10d::control_plane::HandlerFunc f)
    __asm__("pyfleet_redirect__ZN4c10d13control_plane15registerHandlerERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEESt8functionIFvRKNS0_7RequestERNS0_8ResponseEEE");

void GateRegisterHandler(const std::string& name, c10d::control_plane::HandlerFunc f) {
  const std::vector<std::string> names = RealHandlerNames();
  if (std::find(names.begin(), names.end(), name) != names.end()) return;  // Note [One definition per operator]
  RealRegisterHandler(name, std::move(f));
}

}  // extern "C++"

#endif  // TORCH_VERSION_MAJOR >= 2
