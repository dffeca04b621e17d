"""import_module: module objects, attributes, nested packages, relative imports, errors."""
import sys

import pytest

import fixture_spec as spec
from conftest import STOCK
from differ import assert_same_outcome, module_summary, normalize, outcome

PACKAGED_MODULES = [
    "pf_demo", "pf_demo.consts", "pf_demo.util", "pf_demo.util.maths", "pf_demo.util.helpers",
    "pf_demo.models", "pf_demo.raising", "pf_demo.uses_importer", "pf_demo.resources",
    "pf_demo.externs", "pf_demo.data", "pf_demo.data.sub", "pf_mockme", "pf_mockme.sub", "_mock",
]


@pytest.mark.parametrize("name", PACKAGED_MODULES)
def test_module_attributes_match_stock(importer_cls, features, name):
    ref, imp = STOCK(features), importer_cls(features)
    rm, gm = ref.import_module(name), imp.import_module(name)
    assert module_summary(gm) == module_summary(rm)
    assert gm.__name__ == f"{imp.id()}.{name}"
    assert gm.__loader__ is imp and gm.__spec__.loader is imp
    assert gm.__torch_package__ is True
    assert gm.__cached__ is None
    assert gm.__builtins__["__import__"].__self__ is imp
    assert sys.modules.get(name) is None or sys.modules[name] is not gm


def test_module_file_is_mangled_record_name(importer_cls, features):
    imp = importer_cls(features)
    assert imp.import_module("pf_demo.util").__file__ == f"{imp.id()}.pf_demo/util/__init__.py"
    assert imp.import_module("pf_demo.util.maths").__file__ == f"{imp.id()}.pf_demo/util/maths.py"
    assert imp.import_module("pf_demo.data.sub").__file__ is None  # folder without __init__.py


def test_import_module_returns_cached_module(importer_cls, features):
    imp = importer_cls(features)
    assert imp.import_module("pf_demo.consts") is imp.import_module("pf_demo.consts")
    assert imp.modules["pf_demo.consts"] is imp.import_module("pf_demo.consts")


def test_import_module_accepts_own_mangled_name(importer_cls, features):
    imp = importer_cls(features)
    m = imp.import_module("pf_demo.models")
    assert imp.import_module(m.__name__) is m


def test_import_module_of_another_importers_mangled_name_fails_like_stock(importer_cls, features):
    other = STOCK(features).import_module("pf_demo.models").__name__
    ref = outcome(lambda: STOCK(features).import_module(other))
    got = outcome(lambda: importer_cls(features).import_module(other))
    assert_same_outcome(ref, got)


def test_modules_dict_matches_stock_after_same_imports(importer_cls, features):
    ref, imp = STOCK(features), importer_cls(features)
    for name in ("pf_demo.util.helpers", "pf_demo.externs"):
        ref.import_module(name)
        imp.import_module(name)
    assert sorted(imp.modules) == sorted(ref.modules)
    assert imp.modules["torch_package_importer"] is imp
    assert imp.modules["json"] is sys.modules["json"]


def test_parent_packages_get_child_attributes(importer_cls, features):
    imp = importer_cls(features)
    maths = imp.import_module("pf_demo.util.maths")
    assert imp.import_module("pf_demo").util.maths is maths


def test_package_code_sees_torch_package_marker(importer_cls, features):
    imp = importer_cls(features)
    pkg = imp.import_module("pf_demo")
    assert pkg.IN_PACKAGE is True and pkg.in_package() is True
    assert pkg.whoami() == f"{imp.id()}.pf_demo"


def test_constants_match_stock(importer_cls, features):
    consts = importer_cls(features).import_module("pf_demo.consts")
    ref = STOCK(features).import_module("pf_demo.consts")
    for key in ("GREETING", "NUMBERS", "ANSWER", "NESTED"):
        assert getattr(consts, key) == getattr(ref, key)
    assert consts.ANSWER == 42


@pytest.mark.parametrize("name", [
    "pf_absent", "pf_demo.absent", "pf_demo.consts.inner", "pf_demo.util.maths.x.y",
    "requests", "", ".relative", "pf_demo..x",
])
def test_import_errors_match_stock(importer_cls, features, name):
    ref = outcome(lambda: STOCK(features).import_module(name))
    got = outcome(lambda: importer_cls(features).import_module(name))
    assert not ref.ok
    assert_same_outcome(ref, got)


def test_import_error_names_archive_and_externs(importer_cls, features):
    got = outcome(lambda: importer_cls(features).import_module("pf_absent"))
    assert isinstance(got.error, ModuleNotFoundError)
    assert f'"{features}"' in str(got.error) and got.error.name == "pf_absent"


def test_import_non_string_fails_like_stock(importer_cls, features):
    ref = outcome(lambda: STOCK(features).import_module(42))
    got = outcome(lambda: importer_cls(features).import_module(42))
    assert not ref.ok
    assert type(got.error) is type(ref.error)


def test_syntax_error_in_packaged_module_propagates(importer_cls):
    path = spec.fixture_path(spec.BROKEN_DIR, "module_syntax_error.pt")
    ref = outcome(lambda: STOCK(path).import_module("pf_demo.util.maths"))
    got = outcome(lambda: importer_cls(path).import_module("pf_demo.util.maths"))
    assert isinstance(ref.error, SyntaxError)
    assert_same_outcome(ref, got)
    assert normalize(got.error.filename) == normalize(ref.error.filename)
    assert got.error.lineno == ref.error.lineno


def test_failed_import_is_not_cached_half_initialized(importer_cls):
    path = spec.fixture_path(spec.BROKEN_DIR, "module_syntax_error.pt")
    ref, imp = STOCK(path), importer_cls(path)
    for _ in range(2):
        assert_same_outcome(outcome(lambda: ref.import_module("pf_demo.util.maths")),
                            outcome(lambda: imp.import_module("pf_demo.util.maths")))
    assert sorted(imp.modules) == sorted(ref.modules)


def test_many_modules_import_identically(importer_cls, many_pkg):
    ref, imp = STOCK(many_pkg), importer_cls(many_pkg)
    rp, gp = ref.import_module("pf_many"), imp.import_module("pf_many")
    assert gp.COUNT == rp.COUNT == spec.MANY_MODULES_COUNT
    last = f"m{spec.MANY_MODULES_COUNT - 1:03d}"
    assert getattr(gp, last).TOTAL == getattr(rp, last).TOTAL
    n = spec.MANY_MODULES_COUNT - 1
    assert getattr(getattr(gp, last), f"K{n}")().twice() == 2 * n
    assert sorted(imp.modules) == sorted(ref.modules)
    assert len([m for m in imp.modules if m.startswith("pf_many")]) == spec.MANY_MODULES_COUNT + 1
