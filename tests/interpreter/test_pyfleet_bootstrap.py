"""stubs/_pyfleet_bootstrap.py with a plain python3 (the stubs are ordinary modules).

ctest runs this file with PYTHONPATH=<source>/stubs. Every test restores sys.meta_path,
the bootstrap's finder and the modules it imported.
"""
import importlib
import sys

import pytest

import _pyfleet_bootstrap as bootstrap


@pytest.fixture(autouse=True)
def isolated_import_state():
    meta_path = list(sys.meta_path)
    finder = bootstrap._finder
    modules = set(sys.modules)
    yield
    sys.meta_path[:] = meta_path
    bootstrap._finder = finder
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def test_register_module_makes_a_module_importable():
    bootstrap.install({}, "")
    with pytest.raises(ImportError):
        importlib.import_module("pyfleet_registered")
    bootstrap.register_module("pyfleet_registered", "VALUE = 6 * 7\n", False)
    import pyfleet_registered

    assert pyfleet_registered.VALUE == 42
    assert pyfleet_registered.__spec__.origin == "<pyfleet:pyfleet_registered>"


def test_register_module_works_without_install_and_keeps_ctypes_alone():
    bootstrap._finder = None
    bootstrap.register_module("pyfleet_registered_first", "X = 1\n")
    assert importlib.import_module("pyfleet_registered_first").X == 1
    assert bootstrap._finder is sys.meta_path[0]
    assert bootstrap._finder._library_path == ""


def test_packages_and_submodules():
    bootstrap.install({"pyfleet_pkg": ("NAME = 'pkg'\n", True)}, "")
    import pyfleet_pkg  # imported before its submodule exists

    bootstrap.register_module("pyfleet_pkg.late", "from pyfleet_pkg import NAME\nFULL = NAME + '.late'\n", False)
    from pyfleet_pkg import late

    assert late.FULL == "pkg.late"
    assert pyfleet_pkg.__path__ == []


def test_registering_again_changes_later_imports_only():
    bootstrap.install({}, "")
    bootstrap.register_module("pyfleet_again", "V = 1\n")
    import pyfleet_again

    bootstrap.register_module("pyfleet_again", "V = 2\n")
    assert sys.modules["pyfleet_again"].V == 1  # already imported: unchanged
    assert importlib.reload(pyfleet_again).V == 2


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="not a dotted module name"):
        bootstrap.register_module("not a name", "X = 1\n")
    with pytest.raises(ValueError):
        bootstrap.register_module("", "X = 1\n")
    with pytest.raises(TypeError, match="source must be str"):
        bootstrap.register_module("pyfleet_bytes", b"X = 1\n")


def test_install_keeps_working_with_injected_modules():
    bootstrap.install({"pyfleet_injected_py": ("A = 'a'\n", False)}, "")
    assert importlib.import_module("pyfleet_injected_py").A == "a"


def test_deadline_exceeded_is_a_plain_timeout_error_with_pyfleets_message():
    with pytest.raises(TimeoutError) as info:
        raise bootstrap._DeadlineExceeded  # raised by class, as CPython raises async exceptions
    assert type(info.value) is TimeoutError
    assert str(info.value) == "pyfleet: call deadline exceeded"
