"""Shared fixtures of the differential importer tests.

Every test takes `importer_cls`, parametrized as "stock" (torch 1.13's
torch.package.PackageImporter) and "pyfleet" (pyfleet.PackageImporter, the C++ importer,
found on PYTHONPATH; ctest points it at ${CMAKE_BINARY_DIR}/python). A test compares what
`importer_cls` does with what the stock importer (STOCK) does on the same package, so the
"stock" run checks the test itself and the "pyfleet" run checks pyfleet. If pyfleet cannot be
imported, its runs FAIL (never skip) with the reason.

    def test_text(importer_cls, features):
        ref, imp = STOCK(features), importer_cls(features)
        assert imp.load_text("pf_demo.data", "hello.txt") == ref.load_text(...)
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
sys.path.insert(0, HERE)

import torch  # noqa: E402
import torch.package  # noqa: E402
import torch.package.package_importer  # noqa: E402

import fixture_spec as spec  # noqa: E402

# The stock importer class, captured before anything could swap it.
STOCK = torch.package.package_importer.PackageImporter

IMPLS = ("stock", "pyfleet")


def pyfleet_importer_class():
    """pyfleet.PackageImporter, or fails the calling test with why it is unavailable."""
    try:
        import pyfleet
    except ImportError as e:
        pytest.fail(
            f"pyfleet module not importable: {e} (PYTHONPATH={os.environ.get('PYTHONPATH', '')!r}; "
            "build the pyfleet Python module into <build>/python)",
            pytrace=False,
        )
    cls = getattr(pyfleet, "PackageImporter", None)
    if cls is None:
        pytest.fail(f"{pyfleet.__file__} has no PackageImporter", pytrace=False)
    return cls


def importer_class(name):
    return STOCK if name == "stock" else pyfleet_importer_class()


@pytest.fixture(params=IMPLS)
def importer_cls(request):
    return importer_class(request.param)


@pytest.fixture(params=IMPLS)
def impl_name(request):
    """The implementation name, for tests that need more than the class (e.g. subprocesses)."""
    return request.param


def _fixture(name):
    return spec.fixture_path(name)


@pytest.fixture(scope="session")
def features():
    return _fixture(spec.FEATURES)


@pytest.fixture(scope="session")
def script_pkg():
    return _fixture(spec.SCRIPT)


@pytest.fixture(scope="session")
def fx_pkg():
    return _fixture(spec.FX)


@pytest.fixture(scope="session")
def many_pkg():
    return _fixture(spec.MANY)


@pytest.fixture(scope="session")
def small_pkg():
    return _fixture(spec.SMALL)


# The package forms that carry the same records as features.pt.
FEATURE_VARIANTS = (spec.FEATURES, spec.FEATURES_DIR, spec.FEATURES_DEFLATED)


@pytest.fixture(params=FEATURE_VARIANTS)
def feature_variant(request):
    """features.pt, the same package unzipped into a directory, and all-deflated."""
    return _fixture(request.param)
