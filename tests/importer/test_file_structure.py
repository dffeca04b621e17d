"""file_structure(include=, exclude=) and Directory.has_file: same tree text as stock."""
import pytest

import fixture_spec as spec
from conftest import STOCK
from differ import assert_same_outcome, outcome

GLOBS = [
    {},
    {"include": "**"},
    {"include": "pf_demo/**"},
    {"include": ["pf_demo/util/*", "**/*.txt"]},
    {"exclude": "**/*.storage"},
    {"include": "**", "exclude": [".data/**", "**/__init__.py"]},
    {"include": "pf_demo/data/*.pkl", "exclude": "**/plain_*"},
    {"include": "*"},
    {"include": "pf_*/**/*.py"},
    {"include": "nothing/matches"},
    {"include": ()},
    {"include": "pf_demo/da*a/sub/**"},
]


@pytest.mark.parametrize("globs", GLOBS, ids=[repr(g) for g in GLOBS])
@pytest.mark.parametrize("fixture", [spec.FEATURES, spec.SCRIPT, spec.FX, spec.SMALL])
def test_tree_text_matches_stock(importer_cls, fixture, globs):
    path = spec.fixture_path(fixture)
    ref = str(STOCK(path).file_structure(**globs))
    got = importer_cls(path).file_structure(**globs)
    assert str(got) == ref


def test_tree_of_binary_package_is_named_binary(importer_cls, features):
    import io

    data = open(features, "rb").read()
    assert str(importer_cls(io.BytesIO(data)).file_structure()) == str(STOCK(io.BytesIO(data)).file_structure())
    assert str(importer_cls(io.BytesIO(data)).file_structure()).startswith("─── <binary>\n")


def test_directory_object_api(importer_cls, features):
    ref = STOCK(features).file_structure()
    got = importer_cls(features).file_structure()
    assert type(got).__name__ == "Directory"
    assert got.name == ref.name and got.is_dir is True
    assert sorted(got.children) == sorted(ref.children)
    for name in ("pf_demo/util/maths.py", "pf_demo/data/sub/deep.txt", ".data/version",
                 "pf_demo", "pf_demo/nope.py", "nope", "pf_demo/data/sub"):
        assert got.has_file(name) == ref.has_file(name), name


def test_has_file_respects_filters(importer_cls, features):
    got = importer_cls(features).file_structure(include="pf_demo/util/**")
    assert got.has_file("pf_demo/util/maths.py")
    assert not got.has_file("pf_demo/consts.py")


@pytest.mark.parametrize("globs", [{"include": "pf_demo/**x"}, {"exclude": "a/b**"}])
def test_invalid_glob_fails_like_stock(importer_cls, features, globs):
    ref = outcome(lambda: STOCK(features).file_structure(**globs))
    got = outcome(lambda: importer_cls(features).file_structure(**globs))
    assert isinstance(ref.error, ValueError)
    assert_same_outcome(ref, got)


def test_file_structure_arguments_are_keyword_only(importer_cls, features):
    ref = outcome(lambda: STOCK(features).file_structure("**"))
    got = outcome(lambda: importer_cls(features).file_structure("**"))
    assert isinstance(ref.error, TypeError) and isinstance(got.error, TypeError)
