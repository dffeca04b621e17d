"""PackageImporter(file_or_buffer, module_allowed): every argument form, same results."""
import io
import pathlib

import pytest

import fixture_spec as spec
from conftest import STOCK
from differ import assert_same_outcome, normalize, outcome


def _opened(path):
    return open(path, "rb")


@pytest.mark.parametrize("form", ["str", "pathlib", "bytesio", "open_file"])
def test_accepts_every_argument_form(importer_cls, features, form):
    make = {
        "str": lambda p: p,
        "pathlib": pathlib.Path,
        "bytesio": lambda p: io.BytesIO(open(p, "rb").read()),
        "open_file": _opened,
    }[form]
    ref = STOCK(make(features))
    imp = importer_cls(make(features))
    assert imp.filename == ref.filename
    assert imp.filename == ("<binary>" if form in ("bytesio", "open_file") else str(features))
    assert imp.extern_modules == ref.extern_modules
    assert imp.load_text("pf_demo.data", "hello.txt") == spec.HELLO_TEXT
    assert imp.import_module("pf_demo.util.maths").cube(3) == 27


def test_directory_package_reads_like_the_zip(importer_cls, features):
    directory = spec.fixture_path(spec.FEATURES_DIR)
    ref = STOCK(directory)
    imp = importer_cls(directory)
    assert imp.filename == ref.filename == directory
    assert imp.extern_modules == ref.extern_modules
    assert imp.python_version() == ref.python_version()
    assert imp.load_binary("pf_demo.data", "blob.bin") == spec.BLOB_BYTES
    assert sorted(str(imp.file_structure()).splitlines()) == sorted(str(ref.file_structure()).splitlines())


def test_extern_modules_listed_in_archive_order(importer_cls, features):
    ref, imp = STOCK(features), importer_cls(features)
    assert imp.extern_modules == ref.extern_modules
    assert "json" in imp.extern_modules and "numpy" in imp.extern_modules


def test_module_allowed_sees_every_extern_in_order(importer_cls, features):
    seen_ref, seen = [], []
    STOCK(features, module_allowed=lambda m: seen_ref.append(m) or True)
    importer_cls(features, module_allowed=lambda m: seen.append(m) or True)
    assert seen == seen_ref and seen


def test_module_allowed_refusal_raises_import_error(importer_cls, features):
    deny_json = lambda m: m != "json"  # noqa: E731
    ref = outcome(lambda: STOCK(features, module_allowed=deny_json))
    got = outcome(lambda: importer_cls(features, module_allowed=deny_json))
    assert isinstance(ref.error, ImportError)
    assert_same_outcome(ref, got)
    assert "json" in str(got.error) and features in str(got.error)


def test_module_allowed_positional_argument(importer_cls, features):
    got = outcome(lambda: importer_cls(features, lambda m: False))
    ref = outcome(lambda: STOCK(features, lambda m: False))
    assert_same_outcome(ref, got)


def test_module_allowed_exception_propagates(importer_cls, features):
    def boom(m):
        raise KeyError(f"no {m}")

    assert_same_outcome(outcome(lambda: STOCK(features, module_allowed=boom)),
                        outcome(lambda: importer_cls(features, module_allowed=boom)))


def test_missing_file_raises_like_stock(importer_cls, tmp_path):
    missing = str(tmp_path / "nope.pt")
    ref, got = outcome(lambda: STOCK(missing)), outcome(lambda: importer_cls(missing))
    assert not ref.ok and not got.ok
    assert type(got.error) is type(ref.error)
    assert "nope.pt" in str(got.error)


def test_wrong_argument_type_raises_like_stock(importer_cls):
    ref, got = outcome(lambda: STOCK(12345)), outcome(lambda: importer_cls(12345))
    assert not ref.ok and not got.ok
    assert type(got.error) is type(ref.error), (ref, got)


def test_repeated_construction_gives_independent_importers(importer_cls, features):
    a, b = importer_cls(features), importer_cls(features)
    ma, mb = a.import_module("pf_demo"), b.import_module("pf_demo")
    assert ma is not mb
    assert normalize(ma.__name__) == normalize(mb.__name__)
    assert ma.__name__ != mb.__name__
