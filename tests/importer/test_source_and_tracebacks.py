"""get_source, linecache, tracebacks and inspect show the packaged source."""
import inspect
import linecache
import traceback

from torch.package._mangling import demangle

from conftest import STOCK
from differ import normalize

SOURCE_MODULES = ["pf_demo", "pf_demo.raising", "pf_demo.util.maths", "pf_demo.util"]


def test_get_source_returns_packaged_source(importer_cls, features):
    ref, imp = STOCK(features), importer_cls(features)
    for name in SOURCE_MODULES:
        rm, gm = ref.import_module(name), imp.import_module(name)
        assert imp.get_source(gm.__name__) == ref.get_source(rm.__name__)
        assert imp.get_source(name) == ref.get_source(name)


def test_traceback_shows_packaged_lines(importer_cls, features):
    def tb(imp):
        try:
            imp.import_module("pf_demo.raising").nested_fail()
        except ValueError:
            return traceback.format_exc()
        raise AssertionError("did not raise")

    ref, got = tb(STOCK(features)), tb(importer_cls(features))
    strip = lambda s: [ln for ln in normalize(s).splitlines() if "test_source_and_tracebacks" not in ln]  # noqa: E731
    assert strip(got) == strip(ref)
    assert "raise ValueError(message)  # the traceback must show this line" in got
    assert 'return fail("nested")' in got


def test_linecache_serves_packaged_source(importer_cls, features):
    imp = importer_cls(features)
    mod = imp.import_module("pf_demo.raising")
    lines = linecache.getlines(mod.__file__)
    assert lines and "".join(lines) == imp.load_text("pf_demo", "raising.py")
    assert demangle(mod.__file__) == "pf_demo/raising.py"


def test_inspect_getsource_of_packaged_objects(importer_cls, features):
    ref, imp = STOCK(features).import_module("pf_demo.raising"), importer_cls(features).import_module("pf_demo.raising")
    assert inspect.getsource(imp.Thing) == inspect.getsource(ref.Thing)
    assert inspect.getsource(imp.fail) == inspect.getsource(ref.fail)
    assert inspect.getsource(imp) == inspect.getsource(ref)
    assert "class Thing:" in inspect.getsource(imp.Thing)
    assert inspect.getfile(imp.Thing) == imp.__file__


def test_code_objects_carry_mangled_filenames(importer_cls, features):
    imp = importer_cls(features)
    mod = imp.import_module("pf_demo.raising")
    assert mod.fail.__code__.co_filename == mod.__file__
    assert mod.fail.__code__.co_firstlineno == STOCK(features).import_module("pf_demo.raising").fail.__code__.co_firstlineno
