"""Runs once in every pyfleet interpreter, right after CPython starts.

Frozen into the interpreter library (stubs/freeze.py); importable and testable with a
plain python3 too:

    import _pyfleet_bootstrap
    _pyfleet_bootstrap.install({"hello": ("X = 1", False)}, "/path/libpyfleet_interpreter.so")

It does what the C++ side would otherwise do in raw strings:
  * serves the modules the host injected (InterpreterConfig modules) by name, and more
    that the host adds to a running interpreter:

        _pyfleet_bootstrap.register_module("late", "X = 2", False)
        import late   # late.X == 2

  * re-points ctypes.pythonapi at this interpreter's own library copy.
    See Note [ctypes.pythonapi] below.
  * lets torch.ops.load_library load operator libraries again (torchvision's).
    See Note [Operator libraries load once per process] below.
  * holds the exception class the ABI's interrupt raises (_DeadlineExceeded).
"""

import importlib
import sys
from importlib import machinery

# Note [ctypes.pythonapi]
# ~~~~~~~~~~~~~~~~~~~~~~~
# ctypes sets `pythonapi = PyDLL(None)`, a handle on the *process*. The host exports no
# Py* symbol (each interpreter's CPython lives in its own private library copy), so
# ctypes.pythonapi.Py_IncRef would fail or, worse, bind to another interpreter. We patch
# ctypes right after it is first imported, so that importing ctypes stays lazy.


# Note [Operator libraries load once per process]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# torch makes torch.ops.load_library a no-op in its shared-process mode (which pyfleet
# sets: Note [Telling torch it shares the process] below), so a library of custom operators never registers them
# and `import torchvision` fails ("'_OpNamespace' 'torchvision' object has no attribute
# '_cuda_version'"). In pyfleet every interpreter shares the ONE process-wide LibTorch
# dispatcher: a library loaded once registers its operators for all interpreters, and
# the next interpreter's dlopen of the same path returns the loaded library without
# running its registrations again. So load_library does what stock torch does. A library
# that needs CPython symbols (an extension module) cannot load this way (the host exports
# none): such a library is imported, not loaded.


def _load_operator_library(self, path):
    import ctypes
    import torch

    path = torch._utils_internal.resolve_library_path(path)
    with torch._ops.dl_open_guard():
        ctypes.CDLL(path)
    self.loaded_libraries.add(path)


# Note [readline is not available]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# Each interpreter gets a private copy of the readline extension, but all of them drive one
# libreadline (a process-global library: it needs no Python) and one terminal. Two
# interpreters initializing it at once crash in add_history(). Nothing a served model does
# needs a line editor, and the stdlib's users of readline (rlcompleter, which pdb imports,
# as torch 2.x does on import) treat ImportError as "no readline"; so importing it fails.


# Note [Operator schemas defined from Python]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# In its shared-process mode torch 2.x makes torch.library do nothing (Note [Telling torch
# it shares the process]), and then its own modules fail to import: torch._prims (which
# torch.onnx imports, and torchvision.ops imports torch.onnx) defines its operators with
# torch.library and looks each up right after ("'CustomOpDef' object has no attribute
# '_opoverload'"). A kernel written in Python cannot serve the N interpreters (it lives in
# one CPython and would be called with other interpreters' tensors), but a schema can: it
# is data in the one dispatcher. So in pyfleet, on torch 2.x, Library("ns", "DEF" or
# "FRAGMENT").define(schema) and torch.library.custom_op define the operator's schema,
# once per process (the first interpreter's definition serves all: Note [One definition
# per operator] in interpreter/src/registration_gate.cpp), and every kernel registration
# from Python (impl, register_fake, register_kernel, ...) still does nothing but warn.
# torch.ops.ns.name then exists in every interpreter; calling it fails with torch's
# "Could not run 'ns::name' with arguments from the 'CPU' backend". Operators from C++
# libraries are unaffected and run everywhere (Note [Operator libraries load once per
# process]).


def _in_shared_process_mode(torch):
    running = getattr(torch, "_running_with_deploy", None)
    return running is not None and running()


def _import_what_shared_mode_skips(torch):
    """torch 2.x's shared-process mode leaves torch.compiler out of `import torch`, but
    torch._dynamo, which torchvision.ops imports (roi_align), reads torch.compiler at
    import time. Importing it registers nothing process-wide."""
    if _in_shared_process_mode(torch):
        importlib.import_module("torch.compiler")


def _define_schemas_in_library(library):
    import warnings

    import torch

    # torch's own modules (torch._prims) register Python kernels as they import; each would
    # warn that it does nothing here. Code outside torch still gets the warning.
    warnings.filterwarnings("ignore", message="Python torch.library APIs do nothing under torch::deploy",
                            category=RuntimeWarning, module=r"torch\.")

    Library = library.Library
    original_init, original_define = Library.__init__, Library.define

    def __init__(self, ns, kind, dispatch_key=""):
        original_init(self, ns, kind, dispatch_key)
        if not _in_shared_process_mode(torch) or kind not in ("DEF", "FRAGMENT"):
            return
        # A fragment: a second interpreter's "DEF" of the namespace must not be refused.
        self.m = torch._C._dispatch_library("FRAGMENT", ns, "", "<pyfleet>", 0)
        self.ns, self.kind, self.dispatch_key = ns, kind, dispatch_key
        self._op_defs, self._op_impls, self._registration_handles = set(), set(), []

    def define(self, schema, alias_analysis="", *, tags=()):
        if getattr(self, "m", None) is None or not _in_shared_process_mode(torch):
            return original_define(self, schema, alias_analysis, tags=tags)
        if isinstance(tags, torch.Tag):
            tags = (tags,)
        packet_name = schema.split("(")[0].split(".")[0]
        namespace = getattr(torch.ops, self.ns)
        had_packet = hasattr(namespace, packet_name)
        result = self.m.define(schema, alias_analysis, tuple(tags))
        if had_packet:
            torch._ops._refresh_packet(getattr(namespace, packet_name))
        return result

    Library.__init__, Library.define = __init__, define


def _define_schemas_in_custom_ops(custom_ops):
    import torch

    CustomOpDef = custom_ops.CustomOpDef
    original = CustomOpDef._register_to_dispatcher

    def _register_to_dispatcher(self):
        if not _in_shared_process_mode(torch):
            return original(self)
        self._lib.define(self._name + self._schema,
                         tags=[torch._C.Tag.pt2_compliant_tag, torch._C.Tag.needs_fixed_stride_order])
        self._opoverload = torch._library.utils.lookup_op(self._qualname)

    CustomOpDef._register_to_dispatcher = _register_to_dispatcher


class _InjectedSourceLoader:
    """Loader for modules whose source the host handed over at interpreter creation."""

    def __init__(self, name, source, is_package):
        self.name = name
        self.source = source
        self.is_package = is_package

    def create_module(self, spec):
        return None  # default module creation

    def exec_module(self, module):
        code = compile(self.source, self.get_filename(self.name), "exec")
        exec(code, module.__dict__)

    def get_filename(self, name):
        return "<pyfleet:%s>" % name

    def get_source(self, name):
        return self.source


class _PyfleetFinder:
    """Meta-path finder for injected modules and for the ctypes patch."""

    def __init__(self, modules, library_path):
        self._modules = dict(modules)
        self._library_path = library_path

    def add(self, name, source, is_package):
        self._modules[name] = (source, bool(is_package))

    def invalidate_caches(self):
        pass  # nothing cached: find_spec reads _modules each time

    def find_spec(self, fullname, path=None, target=None):
        entry = self._modules.get(fullname)
        if entry is not None:
            source, is_package = entry
            loader = _InjectedSourceLoader(fullname, source, is_package)
            spec = machinery.ModuleSpec(fullname, loader, origin=loader.get_filename(fullname),
                                        is_package=bool(is_package))
            if is_package:
                spec.submodule_search_locations = []
            return spec
        if fullname == "readline":
            # Note [readline is not available]: one terminal, one libreadline, N interpreters.
            raise ImportError("readline is not available in pyfleet interpreters: it drives the "
                              "process's one terminal through libreadline's process-wide state",
                              name=fullname)
        if fullname == "ctypes" and self._library_path:
            library_path = self._library_path
            return self._patched_spec(fullname, path, target,
                                      lambda ctypes: setattr(ctypes, "pythonapi", ctypes.PyDLL(library_path)))
        if fullname == "torch._ops":
            return self._patched_spec(fullname, path, target,
                                      lambda ops: setattr(ops._Ops, "load_library", _load_operator_library))
        if fullname == "torch":
            return self._patched_spec(fullname, path, target, _import_what_shared_mode_skips)
        if fullname == "torch.library":
            return self._patched_spec(fullname, path, target, _define_schemas_in_library)
        if fullname == "torch._library.custom_ops":
            return self._patched_spec(fullname, path, target, _define_schemas_in_custom_ops)
        return None

    @staticmethod
    def _patched_spec(fullname, path, target, patch):
        """The spec the path finders give `fullname`, whose module gets `patch(module)`
        right after it executes (so the import itself stays as lazy as it was)."""
        spec = machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


_finder = None  # the _PyfleetFinder install() put on sys.meta_path


# Note [Telling torch it shares the process]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# torch has a mode for hosts that run many interpreters over one LibTorch (torch::deploy's):
# it then skips what is process-global and may be done once only -- the Python
# registrations with the one dispatcher (torch.library, the meta kernels), loading
# libtorch_global_deps, the shm manager. Without it the second interpreter's
# `import torch` fails ("Only a single TORCH_LIBRARY can be used to register the
# namespace ..."). Each release detects the mode its own way:
#   torch 1.13: sys.executable == "torch_deploy" (set in PyConfig: interpreter/src/lifecycle.cpp)
#   torch 2.x:  sys.modules["torch._meta_registrations"] is object, before `import torch`
# pyfleet sets both, in every interpreter, the first included: no interpreter's Python
# objects ever serve another's calls through the dispatcher, so any interpreter can be
# finalized and the rest keep working. What it costs on 2.x: torch.library (custom ops
# defined in Python: Library.define/impl, torch.library.custom_op, register_fake) does
# nothing and warns; operators from C++ libraries (torch.ops.load_library,
# torchvision's) work as before (Note [Operator libraries load once per process]).


def install(modules, library_path):
    """Puts pyfleet's finder first on sys.meta_path, and puts torch in its
    shared-process mode (Note [Telling torch it shares the process]).

    modules: {dotted name: (source text, is_package)}; library_path: the path of this
    interpreter's library copy as it was dlopen'ed ("" to leave ctypes alone).
    """
    global _finder
    if library_path:
        sys.modules.setdefault("torch._meta_registrations", object)
    _finder = _PyfleetFinder(modules, library_path)
    sys.meta_path.insert(0, _finder)


def register_module(name, source, is_package=False):
    """Makes `name` importable from `source` in this (running) interpreter.

    name: dotted module name; source: Python source text (str); is_package: whether it
    is a package (then "name.sub" may be registered too). A later `import name` finds it.
    Registering a name again replaces its source for later imports; a module already in
    sys.modules stays as it is until it is removed or reloaded. Installs pyfleet's finder
    first if install() has not run (ctypes is then left alone).
    """
    if not isinstance(name, str) or not name or any(not part.isidentifier() for part in name.split(".")):
        raise ValueError("register_module: %r is not a dotted module name" % (name,))
    if not isinstance(source, str):
        raise TypeError("register_module: source must be str, not %s" % type(source).__name__)
    if _finder is None:
        install({}, "")
    elif _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    _finder.add(name, source, is_package)
    # Path-based finders may have cached "not found" for this name's directory entries
    # (FileFinder listings), and a parent package's submodule search is cached the same way.
    importlib.invalidate_caches()


class _DeadlineExceeded(TimeoutError):
    """What the ABI's interrupt raises in a thread (see Note [Deadline interrupts] in
    interpreter/src/gil.h).

    CPython raises an asynchronous exception by class, calling it with no arguments; the
    instance it gets is a plain TimeoutError with pyfleet's message, so Python code and
    the host both see builtins.TimeoutError("pyfleet: call deadline exceeded").
    """

    def __new__(cls, *args):
        return TimeoutError("pyfleet: call deadline exceeded")


def prepare_finalize():
    """Called by the interpreter library right before Py_FinalizeEx.

    Note [Finalizing from another thread]: threading._shutdown() only releases the
    "main" thread's state lock when it runs on the thread that first imported
    threading. In pyfleet that thread is any host thread (often gone by now), so
    Py_FinalizeEx would wait for that lock forever. Mark that thread stopped instead.
    CPython 3.13's threading._shutdown() skips a "main" thread that is not the calling
    one (its threads have a _handle, no _tstate_lock): nothing to do there.
    """
    threading = sys.modules.get("threading")
    if threading is None:
        return
    main = threading._main_thread
    if not hasattr(main, "_tstate_lock"):
        return
    if main.ident == threading.get_ident() or main._is_stopped:
        return
    lock = main._tstate_lock
    if lock is not None and lock.locked():
        lock.release()
    main._stop()
