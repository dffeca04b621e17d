"""Extern modules are the very sys.modules objects; mocked modules behave like torch's mocks."""
import collections
import json
import os.path
import sys

import numpy
import pytest

from conftest import STOCK
from differ import assert_same_outcome, normalize, outcome


def test_extern_modules_are_sys_modules_objects(importer_cls, features):
    imp = importer_cls(features)
    ext = imp.import_module("pf_demo.externs")
    assert ext.JSON is json and ext.JSON is sys.modules["json"]
    assert ext.NUMPY is numpy
    assert ext.ORDERED is collections.OrderedDict
    assert ext.JOIN is os.path.join
    assert imp.import_module("json") is json
    assert imp.import_module("os.path") is os.path
    assert ext.dump({"b": 1, "a": [2]}) == '{"a": [2], "b": 1}'


def test_extern_submodule_of_extern_package(importer_cls, features):
    imp = importer_cls(features)
    import numpy.linalg

    assert imp.import_module("numpy.linalg") is numpy.linalg  # covered by the `numpy` extern


def test_non_extern_installed_module_is_refused(importer_cls, features):
    """`pytest` is importable here but not extern in the package: refused like stock."""
    ref = outcome(lambda: STOCK(features).import_module("pytest"))
    got = outcome(lambda: importer_cls(features).import_module("pytest"))
    assert isinstance(ref.error, ModuleNotFoundError)
    assert_same_outcome(ref, got)


def test_mocked_module_attributes_are_mocked_objects(importer_cls, features):
    ref = STOCK(features).import_module("pf_demo.externs")
    got = importer_cls(features).import_module("pf_demo.externs")
    assert normalize(repr(got.mock_class())) == normalize(repr(ref.mock_class()))
    assert type(got.mock_class()).__name__ == "MockedObject"
    assert got.mock_module().__name__.endswith(".pf_mockme")


@pytest.mark.parametrize("use", [
    lambda m: m.use_mock(),
    lambda m: m.mock_class()(),
    lambda m: m.mock_class() + 1,
    lambda m: len(m.mock_class()),
    lambda m: str(m.mock_class()),
    lambda m: m.mock_module().VERSION.upper(),
], ids=["call_function", "call_class", "add", "len", "str", "attribute_chain"])
def test_using_mocked_objects_fails_like_stock(importer_cls, features, use):
    ref = outcome(lambda: use(STOCK(features).import_module("pf_demo.externs")))
    got = outcome(lambda: use(importer_cls(features).import_module("pf_demo.externs")))
    assert_same_outcome(ref, got, compare=lambda a, b: normalize(repr(a)) == normalize(repr(b)) or pytest.fail(f"{a!r} vs {b!r}"))


def test_mock_module_is_the_packaged_mock_stub(importer_cls, features):
    imp = importer_cls(features)
    mock = imp.import_module("_mock")
    assert mock.__file__ == f"{imp.id()}._mock.py"
    assert imp.import_module("pf_mockme.sub").__file__ == f"{imp.id()}.pf_mockme/sub.py"
