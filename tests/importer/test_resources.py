"""importlib.resources through the importer's get_resource_reader."""
import importlib.resources
import warnings

import pytest

import fixture_spec as spec
from conftest import STOCK
from differ import assert_same_outcome, outcome

warnings.filterwarnings("ignore", category=DeprecationWarning)


@pytest.mark.parametrize("call", ["read_text", "read_binary", "files_text", "contents"])
def test_packaged_code_reads_its_resources(importer_cls, feature_variant, call):
    ref = getattr(STOCK(feature_variant).import_module("pf_demo.resources"), call)()
    got = getattr(importer_cls(feature_variant).import_module("pf_demo.resources"), call)()
    assert got == ref
    expected = {"read_text": spec.HELLO_TEXT, "read_binary": spec.BLOB_BYTES, "files_text": spec.HELLO_TEXT}
    if call in expected:
        assert got == expected[call]
    else:
        assert "hello.txt" in got and "sub" in got and "__init__.py" in got


@pytest.mark.parametrize("name", ["hello.txt", "sub", "missing.txt", "__init__.py"])
def test_is_resource_matches_stock(importer_cls, features, name):
    ref = STOCK(features).import_module("pf_demo.resources").is_resource(name)
    got = importer_cls(features).import_module("pf_demo.resources").is_resource(name)
    assert got == ref


def test_resource_reader_protocol(importer_cls, features):
    ref, imp = STOCK(features), importer_cls(features)
    rr, gr = ref.get_resource_reader("pf_demo.data"), imp.get_resource_reader("pf_demo.data")
    assert gr is not None
    assert gr.open_resource("blob.bin").read() == rr.open_resource("blob.bin").read()
    assert sorted(gr.contents()) == sorted(rr.contents())
    assert gr.is_resource("hello.txt") and not gr.is_resource("nope")
    assert_same_outcome(outcome(lambda: rr.resource_path("hello.txt")),
                        outcome(lambda: gr.resource_path("hello.txt")))


@pytest.mark.parametrize("name", ["pf_demo.consts", "pf_nope", "json", "pf_demo.data.sub"])
def test_resource_reader_for_other_names_like_stock(importer_cls, features, name):
    """None for missing and extern packages; stock raises TypeError for a plain module."""
    ref = outcome(lambda: STOCK(features).get_resource_reader(name))
    got = outcome(lambda: importer_cls(features).get_resource_reader(name))
    assert_same_outcome(ref, got, compare=lambda a, b: (a is None) == (b is None) or pytest.fail(f"{a} vs {b}"))


def test_open_missing_resource_fails_like_stock(importer_cls, features):
    ref = outcome(lambda: STOCK(features).get_resource_reader("pf_demo.data").open_resource("missing.txt"))
    got = outcome(lambda: importer_cls(features).get_resource_reader("pf_demo.data").open_resource("missing.txt"))
    assert not ref.ok and type(got.error) is type(ref.error)


def test_importlib_resources_from_outside_with_module_object(importer_cls, features):
    data = importer_cls(features).import_module("pf_demo.data")
    assert importlib.resources.read_binary(data, "blob.bin") == spec.BLOB_BYTES
    assert (importlib.resources.files(data) / "hello.txt").read_bytes() == spec.HELLO_TEXT.encode()


def test_resource_path_in_directory_package(importer_cls):
    directory = spec.fixture_path(spec.FEATURES_DIR)
    ref = outcome(lambda: STOCK(directory).get_resource_reader("pf_demo.data").resource_path("hello.txt"))
    got = outcome(lambda: importer_cls(directory).get_resource_reader("pf_demo.data").resource_path("hello.txt"))
    assert_same_outcome(ref, got)
