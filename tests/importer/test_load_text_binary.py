"""load_text / load_binary: same bytes and text, same errors."""
import pytest

import fixture_spec as spec
from conftest import STOCK
from differ import assert_same_outcome, outcome


@pytest.mark.parametrize("resource", ["hello.txt", "blob.bin", "empty.txt", "latin1.txt", "model.pkl", "__init__.py"])
def test_load_binary_matches_stock(importer_cls, feature_variant, resource):
    ref = STOCK(feature_variant).load_binary("pf_demo.data", resource)
    got = importer_cls(feature_variant).load_binary("pf_demo.data", resource)
    assert type(got) is bytes and got == ref


def test_known_contents(importer_cls, feature_variant):
    imp = importer_cls(feature_variant)
    assert imp.load_text("pf_demo.data", "hello.txt") == spec.HELLO_TEXT
    assert imp.load_binary("pf_demo.data", "blob.bin") == spec.BLOB_BYTES
    assert imp.load_text("pf_demo.data", "empty.txt") == ""
    assert imp.load_text("pf_demo.data.sub", "deep.txt") == spec.DEEP_TEXT
    assert imp.load_binary("pf_demo.data", "latin1.txt") == spec.LATIN1_BYTES


@pytest.mark.parametrize("kwargs", [
    {}, {"encoding": "latin-1"}, {"encoding": "utf-8", "errors": "replace"},
    {"errors": "ignore"}, {"encoding": "no-such-codec"},
])
@pytest.mark.parametrize("resource", ["hello.txt", "latin1.txt"])
def test_load_text_decoding_matches_stock(importer_cls, features, resource, kwargs):
    ref = outcome(lambda: STOCK(features).load_text("pf_demo.data", resource, **kwargs))
    got = outcome(lambda: importer_cls(features).load_text("pf_demo.data", resource, **kwargs))
    assert_same_outcome(ref, got, compare=lambda a, b: (type(b) is str and a == b) or pytest.fail(f"{a!r} != {b!r}"))


def test_load_text_positional_encoding(importer_cls, features):
    imp = importer_cls(features)
    assert imp.load_text("pf_demo.data", "latin1.txt", "latin-1") == spec.LATIN1_BYTES.decode("latin-1")


@pytest.mark.parametrize("package,resource", [
    ("pf_demo.data", "missing.txt"),
    ("pf_demo.data", "sub/deep.txt"),  # resource must be a bare file name
    ("pf_demo.data", "../consts.py"),
    ("pf_demo.data", ""),
    ("pf_demo.consts", "x.txt"),  # not a package
    ("pf_nope", "x.txt"),
    ("json", "x.txt"),  # extern package
])
def test_bad_resource_arguments_fail_like_stock(importer_cls, features, package, resource):
    for method in ("load_binary", "load_text"):
        ref = outcome(lambda: getattr(STOCK(features), method)(package, resource))
        got = outcome(lambda: getattr(importer_cls(features), method)(package, resource))
        assert not ref.ok
        if isinstance(ref.error, RuntimeError):  # reader error: same type, record named
            assert type(got.error) is RuntimeError, got
            assert f"{package.replace('.', '/')}/{resource}" in str(got.error)
        else:
            assert_same_outcome(ref, got)
