"""id(), python_version() and mangled names that torch.package's own helpers understand."""
import re

import pytest
import torch
from torch.package import is_from_package
from torch.package._mangling import demangle, get_mangle_prefix, is_mangled

import fixture_spec as spec
from conftest import STOCK, importer_class


def test_id_is_a_torch_package_prefix(importer_cls, features):
    imp = importer_cls(features)
    assert re.fullmatch(r"<torch_package_\d+>", imp.id())
    assert imp.id() == imp.id()


def test_ids_are_unique_across_both_importers(features):
    """pyfleet shares torch.package's mangle counter, so mixing importers never collides."""
    ids = []
    for name in ("stock", "pyfleet", "stock", "pyfleet"):
        ids.append(importer_class(name)(features).id())
    assert len(set(ids)) == 4, ids
    numbers = [int(re.search(r"\d+", i).group()) for i in ids]
    assert numbers == list(range(numbers[0], numbers[0] + 4)), ids


def test_module_names_are_mangled_with_the_id(importer_cls, features):
    imp = importer_cls(features)
    mod = imp.import_module("pf_demo.models")
    assert is_mangled(mod.__name__)
    assert get_mangle_prefix(mod.__name__) == imp.id()
    assert demangle(mod.__name__) == "pf_demo.models"
    assert demangle(mod.__file__) == "pf_demo/models.py"
    assert mod.Mlp.__module__ == mod.__name__


def test_is_from_package_recognizes_loaded_objects(importer_cls, features):
    imp = importer_cls(features)
    objs = imp.load_pickle("pf_demo.data", "objects.pkl")
    model = imp.load_pickle("pf_demo.data", "model.pkl")
    assert is_from_package(model) and is_from_package(objs["config"]) and is_from_package(objs["point"])
    assert is_from_package(imp.import_module("pf_demo"))
    assert not is_from_package(torch.nn.Linear(1, 1))
    assert not is_from_package(objs["ordered"])


def test_python_version_matches_stock(importer_cls, feature_variant):
    ref, got = STOCK(feature_variant).python_version(), importer_cls(feature_variant).python_version()
    assert got == ref
    import platform

    assert got == platform.python_version()


def test_python_version_absent_is_none(importer_cls):
    path = spec.fixture_path(spec.FEATURES_NO_PYVER)
    assert STOCK(path).python_version() is None
    assert importer_cls(path).python_version() is None


def test_package_imported_modules_registry_holds_pyfleet_modules(importer_cls, features):
    """torch.package's private registry (used by its inspect.getfile patch) sees the module."""
    from torch.package.package_importer import _package_imported_modules

    mod = importer_cls(features).import_module("pf_demo.raising")
    assert _package_imported_modules.get(mod.__name__) is mod


@pytest.mark.parametrize("attr", ["modules", "extern_modules", "filename", "patched_builtins"])
def test_public_attributes_exist_like_stock(importer_cls, features, attr):
    ref, imp = STOCK(features), importer_cls(features)
    assert hasattr(ref, attr)
    assert hasattr(imp, attr), f"{importer_cls.__name__} lacks {attr}"
