// File: security_policy.h
//
// pyfleet::SecurityPolicy: what Python code in an interpreter may do beyond computing:
// which extern modules packages' code may import, and whether it may create processes,
// use the network or write files. Defence in depth, NOT a sandbox (the Note below).
//
//   pyfleet::SecurityPolicy policy;                        // refuses processes, network, writes
//   policy.allowed_extern_modules = {{"torch", "collections", "math"}};
//   auto env = std::make_shared<pyfleet::NoopEnvironment>();
//   env->setSecurityPolicy(policy);
//   pyfleet::InterpreterManager manager(4, env);           // every interpreter under it
//   ...
//   } catch (const pyfleet::Error& e) {
//     e.status().code();  // PERMISSION_DENIED
//     e.pythonType();     // "pyfleet.AuditEventDenied", "pyfleet.ImportDenied"
//   }
//
// An interpreter's policy is installed right after its CPython starts (before `import
// torch`, before Environment::configureInterpreter) and cannot be changed or removed
// afterwards, from C++ or from Python. Refusals are Python exceptions in the interpreter,
// subclasses of pyfleet.SecurityError (a PermissionError), so they reach the host as
// pyfleet::Error with code PERMISSION_DENIED and the exception's type as pythonType();
// the interpreter, and the process, stay usable.
//
// Note [The security policy is not a sandbox]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// What it stops: a package's own import of an extern module off the allowlist (and a
// pickle's global from such a module), before that module is imported; and, from any
// Python code in the interpreter, the audit events of Note [What the audit hook
// refuses] (interpreter/importer/security_policy.cpp), before they happen. What it does
// NOT stop: the package's code running at all (torch.package executes it: it can loop,
// exhaust memory, read every file the process can read, patch modules other packages
// share); modules reached through allowed ones (`torch.os`, `torch.sys.modules`) or the
// real `builtins.__import__`; anything native code does: ctypes (`torch.ctypes` is one
// attribute away), C extensions, torch ops (torch.save(obj, path) and torch.jit.save
// write files from C++, unaudited); writes to descriptors that are already open. Run
// untrusted packages in OS isolation (a separate process or container, seccomp, no
// network, a read-only file system, resource limits); the full list is Note [What the
// security policy does not stop] in security_policy.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pyfleet {

struct SecurityPolicy {
  // SecurityPolicy::allowed_extern_modules
  //
  // The modules packages' code may import from outside the package (torch.package's
  // extern modules, which are the interpreter's sys.modules), each with its submodules
  // ("torch" allows "torch.nn"); "builtins" is always allowed. Globals of pickles count:
  // load_pickle imports the module of every global it meets. Another extern import
  // raises pyfleet.ImportDenied naming the module. nullopt: no restriction. This limits
  // a package's declared dependencies, not what its code can reach: an allowed module
  // often exposes others (torch's modules hold `os`, for one).
  std::optional<std::vector<std::string>> allowed_extern_modules;

  // Unless set, a CPython audit hook refuses, with pyfleet.AuditEventDenied naming the
  // audit event:
  //   allow_processes: os.system, os.exec*, os.posix_spawn*, os.fork, os.forkpty,
  //     subprocess.Popen, pty.spawn, os.kill, os.killpg;
  //   allow_network: socket connect, bind, sendto, sendmsg and name resolution
  //     (getaddrinfo, gethostbyname, gethostbyaddr, getnameinfo);
  //   allow_file_writes: opening a file to write, create, truncate or append, and
  //     os.remove, rename, rmdir, mkdir, chmod, chown, link, symlink, truncate, utime,
  //     setxattr, removexattr.
  // The full list and what is deliberately not refused: Note [What the audit hook
  // refuses] in interpreter/importer/security_policy.cpp.
  bool allow_processes = false;
  bool allow_network = false;
  bool allow_file_writes = false;
};

}  // namespace pyfleet
