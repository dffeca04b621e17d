"""The backward-compatible packages torch 1.13 loads (torch's test/package/package_bc).

They live in torch's source tree, not in this repo: $PYFLEET_TORCH_TEST_DIR (set by ctest from
the CMake variable PYFLEET_TORCH_TEST_DIR) must name torch 1.13.1's test/ folder.
"""
import os

import pytest
import torch

from conftest import STOCK
from differ import assert_same_outcome, assert_same_value, normalize, outcome

BC = [
    ("test_nn_module.pt", "nn_module", "nn_module.pkl"),
    ("test_torchscript_module.pt", "torchscript_module", "torchscript_module.pkl"),
    ("test_fx_module.pt", "fx_module", "fx_module.pkl"),
]


def bc_dir():
    root = os.environ.get("PYFLEET_TORCH_TEST_DIR")
    if not root:
        pytest.fail("$PYFLEET_TORCH_TEST_DIR is not set (torch 1.13.1's test/ folder)", pytrace=False)
    d = os.path.join(root, "package", "package_bc")
    if not os.path.isdir(d):
        pytest.fail(f"{d} does not exist: fetch torch 1.13.1's source (apt-get source pytorch)", pytrace=False)
    return d


@pytest.mark.parametrize("archive,package,resource", BC, ids=[b[0] for b in BC])
def test_bc_package_loads_like_stock(importer_cls, archive, package, resource):
    path = os.path.join(bc_dir(), archive)
    ref = outcome(lambda: STOCK(path).load_pickle(package, resource))
    got = outcome(lambda: importer_cls(path).load_pickle(package, resource))
    assert ref.ok, ref
    if isinstance(ref.value, torch.fx.GraphModule):
        assert normalize(got.value.code) == normalize(ref.value.code)
        assert_same_value(ref.value.state_dict(), got.value.state_dict())
    else:
        assert_same_outcome(ref, got)


@pytest.mark.parametrize("archive", [b[0] for b in BC])
def test_bc_package_metadata_like_stock(importer_cls, archive):
    path = os.path.join(bc_dir(), archive)
    ref, imp = STOCK(path), importer_cls(path)
    assert str(imp.file_structure()) == str(ref.file_structure())
    assert imp.python_version() == ref.python_version()
    assert imp.extern_modules == ref.extern_modules
