"""Python half of package_importer_fuzzer: what one input does inside the interpreter.

The C++ half (package_importer_fuzzer.cpp) embeds CPython, imports this module once
(setup()) and calls fuzz_one(data) per input. A corrupt package must give a clean
Python exception from pyfleet.PackageImporter and its methods; fuzz_one swallows those
and raises only when the importer broke the C-API protocol (a SystemError such as
"returned NULL without setting an exception"), which the C++ half turns into a crash.

    >>> setup(); fuzz_one(open("small.pt", "rb").read())
"""
import builtins
import gc
import io
import linecache
import sys
import warnings

# Per input, at most this many of each kind of call (keeps one input under ~100 ms).
MAX_PICKLES = 4
MAX_MODULES = 8
MAX_RECORDS = 16

_pyfleet = None
_count = 0


class ProtocolViolation(Exception):
    """The importer broke the C-API contract (not a clean error)."""


class _NoTorchZipReader:
    """Stands in for imp.zip_reader (torch._C.PyTorchFileReader, which TorchScript objects
    in a package are loaded through). torch's own reader and TorchScript deserializer are
    not ours and not instrumented: on a mutated record they allocate what it declares
    (4 GiB seen at once), which would read as our crash. Every use is a clean error."""

    def __getattr__(self, name):
        raise RuntimeError("torch's PyTorchFileReader is not fuzzed here")


def setup():
    global _pyfleet
    warnings.simplefilter("ignore")
    import torch  # noqa: F401  (the importer needs it; importing it once here keeps inputs fast)
    import pyfleet
    _pyfleet = pyfleet
    # Packaged code and pickles run; keep them from touching the terminal or files.
    for name in ("open", "input", "breakpoint", "help", "exit", "quit"):
        if hasattr(builtins, name):
            delattr(builtins, name)
    sys.setrecursionlimit(500)


def _check(exc):
    if isinstance(exc, SystemError):
        raise ProtocolViolation(f"{type(exc).__name__}: {exc}") from exc


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ProtocolViolation:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit and friends from packaged code are clean too
        _check(exc)
        return None


def _files(directory, prefix=""):
    for name, child in list(directory.children.items()):
        path = prefix + name
        if child.is_dir:
            yield from _files(child, path + "/")
        else:
            yield path


def _split(path):
    package, _, resource = path.rpartition("/")
    return package.replace("/", "."), resource


def fuzz_one(data):
    global _count
    _count += 1
    if _count % 256 == 0:
        linecache.clearcache()
        gc.collect()
    imp = _call(_pyfleet.PackageImporter, io.BytesIO(data))
    if imp is None:
        return
    imp.zip_reader = _NoTorchZipReader()
    tree = _call(imp.file_structure)
    _call(imp.python_version)
    _call(imp.id)
    _call(lambda: list(imp.extern_modules))
    if tree is None:
        return
    _call(str, tree)
    files = _call(lambda: list(_files(tree)))
    if files is None:
        return
    _call(imp.file_structure, include="**/*.py", exclude="**/.data/**")
    pickles = [f for f in files if f.endswith(".pkl") and not f.startswith(".data/")]
    sources = [f for f in files if f.endswith(".py") and not f.startswith(".data/")]
    # Records under .data/ are torch's (storages, TorchScript code): not resources.
    for path in [f for f in files if not f.startswith(".data/")][:MAX_RECORDS]:
        package, resource = _split(path)
        _call(imp.load_binary, package, resource)
        _call(imp.load_text, package, resource, "utf-8", "replace")
    for path in sources[:MAX_MODULES]:
        name = path[:-3].replace("/", ".")
        is_package = name.endswith(".__init__")
        if is_package:
            name = name[: -len(".__init__")]
        if _call(imp.import_module, name) is not None:
            _call(imp.get_source, name)
            if is_package:
                reader = _call(imp.get_resource_reader, name)
                if reader is not None:
                    _call(lambda: list(reader.contents()))
    for path in pickles[:MAX_PICKLES]:
        package, resource = _split(path)
        obj = _call(imp.load_pickle, package, resource)
        if obj is not None:
            _call(repr, obj)
        _call(imp.load_pickle, package, resource, copy_storages=True)
