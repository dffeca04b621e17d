// File: security_policy.cpp
//
// The security guards of module `pyfleet` (README "Security"): the exception types every
// refusal raises, and the per-interpreter security policy: an allowlist of the extern
// modules packages' code may import, and a CPython audit hook (PEP 578) that refuses
// creating processes, network access and file writes unless allowed.
//
//   >>> import pyfleet
//   >>> pyfleet.install_security_policy(allowed_extern_modules=["torch", "collections"])
//   >>> import subprocess; subprocess.run(["true"])
//   pyfleet.AuditEventDenied: pyfleet security policy: audit event 'subprocess.Popen' refused: ...
//
// None of this is a sandbox: torch.package runs the package's code, and native code
// (ctypes, extension modules, torch ops) is not audited. See Note [What the audit hook
// refuses] for exactly what is.
#include <fcntl.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "interpreter/importer/arg_parse.h"
#include "interpreter/importer/importer_state.h"
#include "interpreter/importer/py_ref.h"

namespace pyfleet::internal {
namespace {

// Note [Security policy: one per CPython runtime]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The policy is a file static, against Note [One copy per interpreter]'s rule, because
// what it governs is per runtime: CPython keeps C audit hooks (PySys_AddAuditHook) in
// the runtime, not in an interpreter, and they can never be removed. Every pyfleet
// interpreter is the one runtime of its own copy of the interpreter library, so a static
// here is per interpreter by construction; in Debian's python3 (the extension module)
// it is per process. It is installed once, never changed and never freed (the hook keeps
// pointing at it): a second install_security_policy() is RuntimeError, so code that runs
// under a policy cannot loosen it from Python. It holds strong references to the
// exception types it raises, which are never released either.

enum class Guard : uint8_t { kNone, kProcesses, kNetwork, kFileWrites, kOpen };

struct InstalledPolicy {
  bool restrict_externs = false;
  std::vector<std::string> allowed_externs;  // when restrict_externs
  bool allow_processes = false;
  bool allow_network = false;
  bool allow_file_writes = false;
  PyObject* audit_event_denied = nullptr;  // owned, never released (see the Note)
  PyObject* import_denied = nullptr;       // owned, never released
};

std::atomic<const InstalledPolicy*> g_policy{nullptr};  // see the Note
std::atomic<bool> g_installing{false};

// Note [What the audit hook refuses]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The exact events, as CPython 3.11 and its stdlib raise them (checked against the
// strings in libpython3.11-pic.a and every sys.audit() call in /usr/lib/python3.11):
//   processes:   os.system, os.exec (every os.exec*), os.posix_spawn (and posix_spawnp),
//                os.spawn, os.fork, os.forkpty, subprocess.Popen, pty.spawn, os.startfile,
//                os.kill, os.killpg (signals to other processes). os.spawn* on POSIX is
//                os.fork + os.exec; multiprocessing and pty end in these too.
//   network:     socket.connect (and connect_ex), socket.bind, socket.sendto,
//                socket.sendmsg, socket.getaddrinfo, socket.gethostbyname(_ex),
//                socket.gethostbyaddr, socket.getnameinfo: every stdlib client (http,
//                urllib, ftplib, smtplib...) resolves or connects through these.
//   file writes: open (builtins.open, io.open, os.open, pathlib...) when its flags ask for
//                writing, creating, truncating or appending (O_WRONLY, O_RDWR, O_CREAT,
//                O_TRUNC, O_APPEND; O_TMPFILE needs one of them); os.remove (and unlink),
//                os.rename (and replace), os.rmdir, os.mkdir, os.chmod, os.chown, os.link,
//                os.symlink, os.truncate, os.utime, os.setxattr, os.removexattr.
// Not refused, by design: reading files; open(fd, "w") on a descriptor that is already
// open (it opens nothing; os.write to it is not audited either); os.putenv (torch's
// import sets OPENBLAS_MAIN_FREE); ctypes.dlopen (torch.ops.load_library and pyfleet's
// ctypes.pythonapi need it). Not refusable, because CPython raises no event for them:
// _posixsubprocess.fork_exec called directly (subprocess.Popen is refused first),
// os.write/os.sendfile on open descriptors, os.mkfifo/os.mknod, anything native code does.
// `import torch`, torchvision, loading and running models, TorchScript and FX in
// packages raise none of the refused events (tests/security); urllib3's import-time IPv6
// probe (a socket.bind it wraps in `except Exception`) sees a refusal and moves on.

// Note [What the security policy does not stop]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Defence in depth, not a sandbox. The guards catch a package that does what packages
// should not do through the ordinary Python channels (a dependency phoning home at
// import time, a subprocess.run, a cache written next to the model); they do not
// contain code that is written to get out. What each one stops:
//   allowlist:  the package's OWN imports of extern modules (its `import x`, `from x
//               import y`, resolved by PackageImporter) and the module of every global a
//               pickle names, each checked before that module is imported.
//   audit hook: the events above, raised by any Python code in the interpreter (the
//               package's, torch's, the host's Interpreter::run), before the action.
// What none of them stops (each checked by hand under allowed_extern_modules=["torch"]):
//   * The package's code runs: torch.package executes its modules on import and its
//     classes' code on load_pickle (safe=True refuses unlisted classes, nothing more).
//     It can compute forever, allocate all memory, start threads, read any file the
//     process can read (keys, other models) and return what it read, and patch modules
//     every other package in the interpreter shares (torch itself).
//   * Modules reached without an import: an allowed module's attributes (`torch.os`,
//     `torch.sys.modules`: every module already imported), and the real import:
//     "builtins" is always allowed, and `builtins.__import__("json")` is CPython's, not
//     the package's. (The hook still refuses what they then do among its events:
//     `torch.os.system(...)` is os.system.)
//   * Native code, which raises no audit event: ctypes (`torch.ctypes.CDLL(None)
//     .system(b"...")` runs a command), C extensions, torch ops: torch.save(obj, path)
//     and torch.jit.save(m, path) open and write the file from C++ (PyTorchFileWriter)
//     and are NOT refused. Native code can also overwrite the installed policy itself.
//   * Descriptors already open (stdout, a socket or file the host opened): os.write,
//     send, sendfile on them are not events; nor are socket creation, os.mkfifo/mknod,
//     _posixsubprocess.fork_exec called directly.
// Untrusted packages need OS isolation: a separate process or container, seccomp, no
// network namespace, a read-only file system, an unprivileged user, resource limits.
// Pin (Note [Pinned packages] in interpreter/archive/package_archive.h) what you have
// reviewed, load weights with safe=True, and keep this policy as the last net.

struct EventRule {
  const char* name;
  Guard guard;
};
constexpr EventRule kRules[] = {
    {"open", Guard::kOpen},
    {"os.system", Guard::kProcesses},
    {"os.exec", Guard::kProcesses},
    {"os.posix_spawn", Guard::kProcesses},
    {"os.spawn", Guard::kProcesses},
    {"os.fork", Guard::kProcesses},
    {"os.forkpty", Guard::kProcesses},
    {"os.startfile", Guard::kProcesses},
    {"os.kill", Guard::kProcesses},
    {"os.killpg", Guard::kProcesses},
    {"os.remove", Guard::kFileWrites},
    {"os.rename", Guard::kFileWrites},
    {"os.rmdir", Guard::kFileWrites},
    {"os.mkdir", Guard::kFileWrites},
    {"os.chmod", Guard::kFileWrites},
    {"os.chown", Guard::kFileWrites},
    {"os.link", Guard::kFileWrites},
    {"os.symlink", Guard::kFileWrites},
    {"os.truncate", Guard::kFileWrites},
    {"os.utime", Guard::kFileWrites},
    {"os.setxattr", Guard::kFileWrites},
    {"os.removexattr", Guard::kFileWrites},
    {"subprocess.Popen", Guard::kProcesses},
    {"pty.spawn", Guard::kProcesses},
    {"socket.connect", Guard::kNetwork},
    {"socket.bind", Guard::kNetwork},
    {"socket.sendto", Guard::kNetwork},
    {"socket.sendmsg", Guard::kNetwork},
    {"socket.getaddrinfo", Guard::kNetwork},
    {"socket.gethostbyname", Guard::kNetwork},
    {"socket.gethostbyaddr", Guard::kNetwork},
    {"socket.getnameinfo", Guard::kNetwork},
};

// The hook runs for EVERY audit event (builtins.id, object.__getattr__, import, exec,
// ... thousands during `import torch`), so the common case returns after one switch.
Guard Classify(const char* event) {
  switch (event[0]) {
    case 'o':
    case 's':
    case 'p':
      break;
    default:
      return Guard::kNone;
  }
  for (const EventRule& rule : kRules) {
    if (std::strcmp(rule.name, event) == 0) return rule.guard;
  }
  return Guard::kNone;
}

// Whether an "open" event (args: path, mode, flags) opens a file for writing. A path
// that is an int is a descriptor already open: nothing is opened (see the Note).
bool OpensForWriting(PyObject* args) {
  if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 3) return false;
  if (PyLong_Check(PyTuple_GET_ITEM(args, 0))) return false;
  PyObject* flags = PyTuple_GET_ITEM(args, 2);  // borrowed from args
  if (!PyLong_Check(flags)) return false;
  long f = PyLong_AsLong(flags);
  if (f == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    return true;  // flags we cannot read: refuse rather than guess
  }
  return (f & O_ACCMODE) != O_RDONLY || (f & (O_CREAT | O_TRUNC | O_APPEND)) != 0;
}

// Raises `type`(msg) with attribute `attr` = `value` (borrowed). Returns -1.
int RaiseWithAttr(PyObject* type, PyObject* msg, const char* attr, PyObject* value) {
  if (msg == nullptr) return -1;
  PyRef exc = PyRef::steal(PyObject_CallOneArg(type, msg));
  if (!exc) return -1;
  if (attr != nullptr && PyObject_SetAttrString(exc.get(), attr, value) < 0) return -1;
  PyErr_SetObject(type, exc.get());
  return -1;
}

// The C audit hook (Py_AuditHookFunction). Called with the GIL held, for every event of
// this runtime. 0 lets the event through; -1 with AuditEventDenied set aborts it.
int AuditHook(const char* event, PyObject* args, void* user_data) {
  auto* policy = static_cast<const InstalledPolicy*>(user_data);
  Guard guard = Classify(event);
  const char* what = nullptr;
  const char* flag = nullptr;
  switch (guard) {
    case Guard::kNone:
      return 0;
    case Guard::kProcesses:
      if (policy->allow_processes) return 0;
      what = "creating processes and signalling other processes";
      flag = "allow_processes";
      break;
    case Guard::kNetwork:
      if (policy->allow_network) return 0;
      what = "network access";
      flag = "allow_network";
      break;
    case Guard::kOpen:
      if (policy->allow_file_writes || !OpensForWriting(args)) return 0;
      [[fallthrough]];
    case Guard::kFileWrites:
      if (policy->allow_file_writes) return 0;
      what = "writing files";
      flag = "allow_file_writes";
      break;
  }
  // repr of the arguments, for the message only; cut short, and never an error itself.
  PyRef shown = PyRef::steal(PyObject_Repr(args));
  if (!shown) {
    PyErr_Clear();
    shown = PyRef::steal(PyUnicode_FromString("<unprintable>"));
    if (!shown) return -1;
  }
  constexpr Py_ssize_t kMaxShown = 240;
  if (PyUnicode_GET_LENGTH(shown.get()) > kMaxShown) {
    PyRef head = PyRef::steal(PyUnicode_Substring(shown.get(), 0, kMaxShown));
    if (!head) return -1;
    shown = PyRef::steal(PyUnicode_FromFormat("%U...", head.get()));
    if (!shown) return -1;
  }
  PyRef msg = PyRef::steal(PyUnicode_FromFormat(
      "pyfleet security policy: audit event '%s' refused: %s is not allowed in this interpreter "
      "(SecurityPolicy.%s is false); event arguments: %U",
      event, what, flag, shown.get()));
  PyRef name = PyRef::steal(PyUnicode_FromString(event));
  if (!msg || !name) return -1;
  PyRef exc = PyRef::steal(PyObject_CallOneArg(policy->audit_event_denied, msg.get()));
  if (!exc || PyObject_SetAttrString(exc.get(), "event", name.get()) < 0 ||
      PyObject_SetAttrString(exc.get(), "event_args", args) < 0) {
    return -1;
  }
  PyErr_SetObject(policy->audit_event_denied, exc.get());
  return -1;
}

// Whether `name` is a dotted module name ("a.b_c"): non-empty identifiers.
bool IsDottedName(std::string_view name) {
  if (name.empty()) return false;
  bool start = true;
  for (char c : name) {
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                       static_cast<unsigned char>(c) >= 0x80;
    if (!alpha && !(c >= '0' && c <= '9' && !start)) return false;
    start = false;
  }
  return !start;
}

// Reads allowed_extern_modules (an iterable of str; a lone str is refused: it would be
// iterated per character) into `out`. "x.**" and "x.*" mean "x" (an entry allows its
// submodules anyway). 0 or -1 with TypeError/ValueError.
int ReadExternAllowlist(PyObject* iterable, std::vector<std::string>* out) {
  if (PyUnicode_Check(iterable) || PyBytes_Check(iterable)) {
    PyErr_SetString(PyExc_TypeError, "allowed_extern_modules must be a list of module names, not a str");
    return -1;
  }
  PyRef it = PyRef::steal(PyObject_GetIter(iterable));
  if (!it) return -1;
  while (PyRef item = PyRef::steal(PyIter_Next(it.get()))) {
    if (!PyUnicode_Check(item.get())) {
      PyErr_Format(PyExc_TypeError, "allowed_extern_modules: entries must be str, not %s",
                   Py_TYPE(item.get())->tp_name);
      return -1;
    }
    Py_ssize_t len;
    const char* s = PyUnicode_AsUTF8AndSize(item.get(), &len);
    if (s == nullptr) return -1;
    std::string entry(s, static_cast<size_t>(len));
    for (const char* suffix : {".**", ".*"}) {
      const size_t n = std::strlen(suffix);
      if (entry.size() > n && entry.compare(entry.size() - n, n, suffix) == 0) {
        entry.resize(entry.size() - n);
        break;
      }
    }
    if (!IsDottedName(entry)) {
      PyErr_Format(PyExc_ValueError, "allowed_extern_modules: %R is not a module name", item.get());
      return -1;
    }
    out->push_back(std::move(entry));
  }
  return PyErr_Occurred() ? -1 : 0;
}

bool ExternAllowed(const InstalledPolicy& policy, std::string_view name) {
  if (!policy.restrict_externs || name == "builtins") return true;
  for (const std::string& a : policy.allowed_externs) {
    if (name.size() >= a.size() && name.compare(0, a.size(), a) == 0 &&
        (name.size() == a.size() || name[a.size()] == '.')) {
      return true;
    }
  }
  return false;
}

// pyfleet.install_security_policy(*, allowed_extern_modules=None, allow_processes=False,
//                                 allow_network=False, allow_file_writes=False)
PyObject* Pyfleet_install_security_policy(PyObject* module, PyObject* const* args, Py_ssize_t nargs,
                                          PyObject* kwnames) {
  static const char* const kNames[] = {"allowed_extern_modules", "allow_processes", "allow_network",
                                       "allow_file_writes"};
  PyObject* v[4] = {Py_None, Py_False, Py_False, Py_False};
  if (BindArgs("install_security_policy", args, nargs, kwnames, kNames, 0, 0, v) < 0) return nullptr;
  auto* st = static_cast<ImporterState*>(PyModule_GetState(module));
  if (st == nullptr) return nullptr;
  auto policy = std::make_unique<InstalledPolicy>();
  if (v[0] != Py_None) {
    policy->restrict_externs = true;
    if (ReadExternAllowlist(v[0], &policy->allowed_externs) < 0) return nullptr;
  }
  bool* flags[3] = {&policy->allow_processes, &policy->allow_network, &policy->allow_file_writes};
  for (int i = 0; i < 3; ++i) {
    int truth = PyObject_IsTrue(v[1 + i]);
    if (truth < 0) return nullptr;
    *flags[i] = truth != 0;
  }
  // See Note [Security policy: one per CPython runtime]. PySys_AddAuditHook runs the
  // hooks already installed, which may release the GIL: the flag keeps a second caller
  // out meanwhile.
  if (g_policy.load(std::memory_order_acquire) != nullptr || g_installing.exchange(true)) {
    PyErr_SetString(PyExc_RuntimeError,
                    "pyfleet: a security policy is already installed in this interpreter; it cannot be "
                    "changed or replaced");
    return nullptr;
  }
  policy->audit_event_denied = Py_NewRef(st->audit_event_denied);
  policy->import_denied = Py_NewRef(st->import_denied);
  const InstalledPolicy* installed = policy.release();  // never freed (see the Note)
  if (PySys_AddAuditHook(AuditHook, const_cast<InstalledPolicy*>(installed)) < 0) {
    g_installing.store(false);
    return nullptr;  // another hook refused sys.addaudithook; `installed` leaks (tiny)
  }
  g_policy.store(installed, std::memory_order_release);
  Py_RETURN_NONE;
}

// pyfleet.security_policy() -> dict or None
PyObject* Pyfleet_security_policy(PyObject* /*module*/, PyObject* /*unused*/) {
  const InstalledPolicy* p = g_policy.load(std::memory_order_acquire);
  if (p == nullptr) Py_RETURN_NONE;
  PyRef externs = PyRef::borrow(Py_None);
  if (p->restrict_externs) {
    externs = PyRef::steal(PyTuple_New(static_cast<Py_ssize_t>(p->allowed_externs.size())));
    if (!externs) return nullptr;
    for (size_t i = 0; i < p->allowed_externs.size(); ++i) {
      PyObject* s = PyUnicode_FromStringAndSize(p->allowed_externs[i].data(),
                                                static_cast<Py_ssize_t>(p->allowed_externs[i].size()));
      if (s == nullptr) return nullptr;
      PyTuple_SET_ITEM(externs.get(), static_cast<Py_ssize_t>(i), s);  // steals s
    }
  }
  return Py_BuildValue("{sOsOsOsO}", "allowed_extern_modules", externs.get(), "allow_processes",
                       p->allow_processes ? Py_True : Py_False, "allow_network",
                       p->allow_network ? Py_True : Py_False, "allow_file_writes",
                       p->allow_file_writes ? Py_True : Py_False);
}

}  // namespace

int CheckExternAllowed(PackageImporterObject* self, PyObject* name) {
  const InstalledPolicy* policy = g_policy.load(std::memory_order_acquire);
  if (policy == nullptr || !policy->restrict_externs) return 0;
  Py_ssize_t len;
  const char* s = PyUnicode_AsUTF8AndSize(name, &len);
  if (s == nullptr) return -1;
  if (ExternAllowed(*policy, std::string_view(s, static_cast<size_t>(len)))) return 0;
  std::string allowed;
  for (const std::string& a : policy->allowed_externs) allowed += (allowed.empty() ? "" : ", ") + a;
  PyRef msg = PyRef::steal(PyUnicode_FromFormat(
      "pyfleet security policy: package '%U' imports the extern module '%U', which is not on this "
      "interpreter's allowed_extern_modules (%s)",
      self->filename, name, allowed.empty() ? "empty" : allowed.c_str()));
  return RaiseWithAttr(policy->import_denied, msg.get(), "name", name);
}

PyObject* RaiseIntegrityError(ImporterState* st, const std::string& message, PyObject* filename) {
  PyRef msg = PyRef::steal(PyUnicode_FromStringAndSize(message.data(), static_cast<Py_ssize_t>(message.size())));
  RaiseWithAttr(st->integrity_error, msg.get(), "path", filename);
  return nullptr;
}

int AddSecurityTypes(PyObject* module, ImporterState* st) {
  st->security_error = PyErr_NewExceptionWithDoc(
      "pyfleet.SecurityError",
      "Base of every refusal by one of pyfleet's security guards (a PermissionError, so a host sees "
      "PERMISSION_DENIED). None of the guards is a sandbox: see pyfleet's README, Security.",
      PyExc_PermissionError, nullptr);
  if (st->security_error == nullptr) return -1;
  st->integrity_error = PyErr_NewExceptionWithDoc(
      "pyfleet.IntegrityError",
      "PackageImporter(path, sha256=...): the archive's SHA-256 is not the pinned one "
      "(attribute `path`: the archive).",
      st->security_error, nullptr);
  st->import_denied = PyErr_NewExceptionWithDoc(
      "pyfleet.ImportDenied",
      "A package imported an extern module that the interpreter's security policy does not allow "
      "(attribute `name`: the module).",
      st->security_error, nullptr);
  st->audit_event_denied = PyErr_NewExceptionWithDoc(
      "pyfleet.AuditEventDenied",
      "The interpreter's security policy refused an audit event (attributes `event`: its name, "
      "`event_args`: its arguments).",
      st->security_error, nullptr);
  if (st->integrity_error == nullptr || st->import_denied == nullptr || st->audit_event_denied == nullptr) {
    return -1;
  }
  PyRef bases = PyRef::steal(PyTuple_Pack(2, st->unpickling_error, st->security_error));
  if (!bases) return -1;
  st->global_denied = PyErr_NewExceptionWithDoc(
      "pyfleet.GlobalDenied",
      "load_pickle(..., safe=True): the pickle references a global outside the allowlist "
      "(attribute `global_name`). Both a pickle.UnpicklingError and a pyfleet.SecurityError.",
      bases.get(), nullptr);
  if (st->global_denied == nullptr) return -1;
  if (PyModule_AddObjectRef(module, "SecurityError", st->security_error) < 0 ||
      PyModule_AddObjectRef(module, "IntegrityError", st->integrity_error) < 0 ||
      PyModule_AddObjectRef(module, "ImportDenied", st->import_denied) < 0 ||
      PyModule_AddObjectRef(module, "AuditEventDenied", st->audit_event_denied) < 0 ||
      PyModule_AddObjectRef(module, "GlobalDenied", st->global_denied) < 0) {
    return -1;
  }
  return 0;
}

#define FASTCALL_KW(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(f))

PyMethodDef security_module_methods[] = {
    {"install_security_policy", FASTCALL_KW(Pyfleet_install_security_policy), METH_FASTCALL | METH_KEYWORDS,
     "install_security_policy(*, allowed_extern_modules=None, allow_processes=False,\n"
     "                        allow_network=False, allow_file_writes=False)\n\n"
     "Installs this interpreter's security policy, once (RuntimeError if one is installed):\n"
     "  allowed_extern_modules: module names packages' code may import from outside the\n"
     "    package (each with its submodules; 'builtins' always); None: no restriction. An\n"
     "    import outside the list raises pyfleet.ImportDenied.\n"
     "  allow_processes / allow_network / allow_file_writes: unless true, a CPython audit\n"
     "    hook refuses the corresponding events with pyfleet.AuditEventDenied.\n"
     "Defence in depth, not a sandbox: native code and ctypes are not audited."},
    {"security_policy", Pyfleet_security_policy, METH_NOARGS,
     "security_policy() -> dict of the installed policy, or None"},
    {"safe_globals", PyfleetSafeGlobals, METH_NOARGS,
     "safe_globals() -> frozenset of the globals load_pickle(..., safe=True) always allows\n"
     "(torch.load(weights_only=True)'s set in torch 1.13.1, plus every torch dtype and\n"
     "builtins.set / builtins.frozenset, how pickle protocol 3 spells a set)"},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace pyfleet::internal
