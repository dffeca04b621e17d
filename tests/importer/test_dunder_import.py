"""The patched __import__ in packaged modules: levels, fromlist, star, special modules."""
import builtins

import pytest

from conftest import STOCK
from differ import assert_same_outcome, normalize, outcome


def test_import_statements_resolve_like_stock(importer_cls, features):
    ref = STOCK(features).import_module("pf_demo.util.helpers").summary()
    got = importer_cls(features).import_module("pf_demo.util.helpers").summary()
    assert {k: normalize(str(v)) for k, v in got.items()} == {k: normalize(str(v)) for k, v in ref.items()}
    assert got["answer"] == 42 and got["maths_is_alias"] is True


def test_direct_dunder_import_calls_match_stock(importer_cls, features):
    ref = STOCK(features).import_module("pf_demo.util.helpers").dunder_import_probe()
    got = importer_cls(features).import_module("pf_demo.util.helpers").dunder_import_probe()
    assert {k: normalize(v) for k, v in got.items()} == {k: normalize(v) for k, v in ref.items()}


def _imp(importer, *args, **kwargs):
    helpers = importer.import_module("pf_demo.util.helpers")
    return helpers.__builtins__["__import__"](*args, **kwargs)


CALLS = [
    (("pf_demo.util.maths",), {}),
    (("pf_demo.util.maths", None, None, ["cube", "nonexistent_attr"]), {}),
    (("pf_demo.util", None, None, ["nonexistent_module"]), {}),
    (("pf_demo.util", None, None, ["*"]), {}),
    (("pf_demo.util", None, None, [1]), {}),
    (("maths", {"__package__": "pf_demo.util"}, None, ["square"], 1), {}),
    (("", {"__package__": "pf_demo.util"}, None, ["maths"], 1), {}),
    (("", {"__name__": "pf_demo.util.helpers"}, None, ["maths"], 1), {}),
    (("x", {"__package__": "pf_demo"}, None, (), 5), {}),
    (("x", {}, None, (), 1), {}),
    (("x", None, None, (), -1), {}),
    (("pf_absent",), {}),
    (("json",), {}),
    (("os.path",), {}),
    (("os.path", None, None, ["join"]), {}),
    (("torch_package_importer",), {}),
    (("pf_demo.util.maths",), {"fromlist": ["square"], "level": 0}),
]


@pytest.mark.parametrize("args,kwargs", CALLS, ids=[repr(c) for c in CALLS])
def test_dunder_import_argument_shapes_match_stock(importer_cls, features, args, kwargs):
    ref = outcome(lambda: _imp(STOCK(features), *args, **kwargs))
    got = outcome(lambda: _imp(importer_cls(features), *args, **kwargs))

    def same_module(a, b):
        name = lambda m: normalize(getattr(m, "__name__", type(m).__name__))  # noqa: E731
        assert name(a) == name(b)

    assert_same_outcome(ref, got, compare=same_module)


def test_patched_builtins_differ_only_in_import(importer_cls, features):
    imp = importer_cls(features)
    b = imp.import_module("pf_demo").__builtins__
    assert isinstance(b, dict)
    assert sorted(b) == sorted(vars(builtins))
    for k, v in vars(builtins).items():
        if k != "__import__":
            assert b[k] is v, k
    assert b["__import__"] is not builtins.__import__
    assert builtins.__import__ is builtins.__dict__["__import__"]  # the real builtins untouched


def test_importer_dunder_import_method_matches_stock(importer_cls, features):
    imp, ref = importer_cls(features), STOCK(features)
    got = imp.__import__("pf_demo.util.maths", None, None, ["square"])
    assert normalize(got.__name__) == normalize(ref.__import__("pf_demo.util.maths", None, None, ["square"]).__name__)
    assert normalize(imp.__import__("pf_demo.util.maths").__name__) == "<torch_package_N>.pf_demo"


def test_torch_package_importer_module_is_the_importer(importer_cls, features):
    imp = importer_cls(features)
    mod = imp.import_module("pf_demo.uses_importer")
    assert mod.IMPORTER is imp
    assert mod.own_id() == imp.id()
    assert mod.own_text() == imp.load_text("pf_demo.data", "hello.txt")


def test_from_torch_package_importer_import_fails_like_stock(importer_cls, features):
    ref = outcome(lambda: STOCK(features).import_module("pf_demo.uses_importer").from_import_probe())
    got = outcome(lambda: importer_cls(features).import_module("pf_demo.uses_importer").from_import_probe())
    assert isinstance(ref.error, AttributeError)
    assert type(got.error) is AttributeError and "__name__" in str(got.error)
