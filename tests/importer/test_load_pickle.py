"""load_pickle: tensors and storages, packaged classes, reduce_package, map_location, errors."""

import pytest
import torch

import fixture_spec as spec
from proc_maps import mapped_ranges
from conftest import STOCK
from differ import (assert_same_outcome, assert_same_storage_sharing, assert_same_value,
                    outcome)

GOOD_PICKLES = ["model.pkl", "model_p4.pkl", "tensors.pkl", "objects.pkl", "objects_p4.pkl",
                "plain_p0.pkl", "plain_p1.pkl", "plain_p2.pkl", "plain_p5.pkl"]


@pytest.mark.parametrize("resource", GOOD_PICKLES)
def test_unpickled_values_match_stock(importer_cls, feature_variant, resource):
    ref = STOCK(feature_variant).load_pickle("pf_demo.data", resource)
    got = importer_cls(feature_variant).load_pickle("pf_demo.data", resource)
    assert_same_value(ref, got)
    assert_same_storage_sharing(ref, got)


def test_tensor_views_share_one_storage(importer_cls, features):
    t = importer_cls(features).load_pickle("pf_demo.data", "tensors.pkl")
    base = t["base"]
    for view in ("transposed", "slice", "row"):
        assert t[view].storage().data_ptr() == base.storage().data_ptr(), view
    assert torch.equal(t["transposed"], base.t())
    assert torch.equal(t["slice"], base[2:, 1:4])
    assert t["same_object"] is t["f32"]
    assert isinstance(t["param"], torch.nn.Parameter) and t["param"].requires_grad
    assert not t["frozen_param"].requires_grad
    assert t["sparse"].is_sparse and t["quantized"].is_quantized
    assert t["channels_last"].is_contiguous(memory_format=torch.channels_last)


def test_loaded_model_computes_like_stock(importer_cls, features):
    torch.manual_seed(0)
    x = torch.randn(5, 8)
    ref = STOCK(features).load_pickle("pf_demo.data", "model.pkl")
    got = importer_cls(features).load_pickle("pf_demo.data", "model.pkl")
    assert torch.equal(got(x), ref(x))
    assert type(got).__module__ != type(ref).__module__  # each importer's own class
    assert type(got).__qualname__ == "Mlp"


def test_loaded_tensors_are_writable(importer_cls, features):
    """In-place ops on loaded weights must work (the archive mapping is copy-on-write)."""
    imp = importer_cls(features)
    model = imp.load_pickle("pf_demo.data", "model.pkl")
    with torch.no_grad():
        model.fc1.weight.add_(1.0)
    again = imp.load_pickle("pf_demo.data", "model.pkl")
    ref = STOCK(features).load_pickle("pf_demo.data", "model.pkl")
    assert torch.equal(again.fc1.weight, ref.fc1.weight), "a write leaked into the archive"
    model.train()(torch.randn(4, 8))  # BatchNorm updates running stats in place


def test_each_load_returns_new_objects(importer_cls, features):
    imp = importer_cls(features)
    a = imp.load_pickle("pf_demo.data", "tensors.pkl")
    b = imp.load_pickle("pf_demo.data", "tensors.pkl")
    assert a is not b and a["f32"] is not b["f32"]
    assert torch.equal(a["f32"], b["f32"])


def test_reduce_package_runs_once_per_id_with_the_importer(importer_cls, features):
    imp = importer_cls(features)
    objs = imp.load_pickle("pf_demo.data", "objects.pkl")
    assert objs["blob"] is objs["blob_again"]
    assert objs["blob"].data == spec.REDUCE_BLOB
    assert objs["blob"].from_importer == imp.id()


def test_packaged_classes_come_from_the_importer(importer_cls, features):
    imp = importer_cls(features)
    objs = imp.load_pickle("pf_demo.data", "objects.pkl")
    assert objs["class"] is imp.import_module("pf_demo.models").Mlp
    assert objs["function"] is imp.import_module("pf_demo.util.maths").square
    assert type(objs["config"]) is imp.import_module("pf_demo.models").Config


@pytest.mark.parametrize("map_location", [
    "cpu", torch.device("cpu"), {"cuda:0": "cpu"}, lambda storage, loc: storage,
], ids=["str", "device", "dict", "callable"])
def test_map_location_moves_cuda_storages(importer_cls, features, map_location):
    ref = STOCK(features).load_pickle("pf_demo.data", "cuda_tensor.pkl", map_location=map_location)
    got = importer_cls(features).load_pickle("pf_demo.data", "cuda_tensor.pkl", map_location=map_location)
    assert_same_value(ref, got)
    assert torch.equal(got["w"], torch.arange(6.0).view(2, 3))


def test_map_location_keyword_on_cpu_pickle(importer_cls, features):
    ref = STOCK(features).load_pickle("pf_demo.data", "model.pkl", map_location="cpu")
    got = importer_cls(features).load_pickle("pf_demo.data", "model.pkl", map_location="cpu")
    assert_same_value(ref, got)


def test_cuda_storage_without_map_location_fails_like_stock(importer_cls, features):
    assert not torch.cuda.is_available()
    ref = outcome(lambda: STOCK(features).load_pickle("pf_demo.data", "cuda_tensor.pkl"))
    got = outcome(lambda: importer_cls(features).load_pickle("pf_demo.data", "cuda_tensor.pkl"))
    assert isinstance(ref.error, RuntimeError)
    assert_same_outcome(ref, got)


def test_bad_map_location_fails_like_stock(importer_cls, features):
    ref = outcome(lambda: STOCK(features).load_pickle("pf_demo.data", "model.pkl", map_location=3.5))
    got = outcome(lambda: importer_cls(features).load_pickle("pf_demo.data", "model.pkl", map_location=3.5))
    assert_same_outcome(ref, got)


@pytest.mark.parametrize("resource", [
    "missing_module.pkl", "missing_attr.pkl", "garbage.pkl", "truncated.pkl",
    "bad_persistent_id.pkl", "hello.txt", "no_such.pkl",
])
def test_bad_pickles_fail_like_stock(importer_cls, features, resource):
    ref = outcome(lambda: STOCK(features).load_pickle("pf_demo.data", resource))
    got = outcome(lambda: importer_cls(features).load_pickle("pf_demo.data", resource))
    assert not ref.ok
    if isinstance(ref.error, RuntimeError):  # reader errors: same type, the record named
        assert type(got.error) is RuntimeError, got
        named = ".data/999.storage" if resource == "bad_persistent_id.pkl" else f"pf_demo/data/{resource}"
        assert named in str(got.error)
    else:
        assert_same_outcome(ref, got)


def test_missing_module_error_names_archive(importer_cls, features):
    got = outcome(lambda: importer_cls(features).load_pickle("pf_demo.data", "missing_module.pkl"))
    assert isinstance(got.error, ModuleNotFoundError) and got.error.name == "pf_absent"
    assert f'"{features}"' in str(got.error)


def test_importer_usable_after_failed_loads(importer_cls, features):
    imp = importer_cls(features)
    for resource in ("garbage.pkl", "missing_module.pkl", "truncated.pkl"):
        assert not outcome(lambda: imp.load_pickle("pf_demo.data", resource)).ok
    assert imp.load_pickle("pf_demo.data", "tensors.pkl")["i64"].tolist() == list(range(-5, 5))
    assert imp.storage_context is None and imp.last_map_location is None


@pytest.mark.parametrize("package", ["pf_demo.consts", "pf_nope", "pf_demo.data.sub"])
def test_load_pickle_package_argument_errors_match_stock(importer_cls, features, package):
    ref = outcome(lambda: STOCK(features).load_pickle(package, "model.pkl"))
    got = outcome(lambda: importer_cls(features).load_pickle(package, "model.pkl"))
    if isinstance(ref.error, RuntimeError):
        assert type(got.error) is RuntimeError and "model.pkl" in str(got.error), got
    else:
        assert_same_outcome(ref, got)


def test_load_pickle_accepts_module_object_as_package(importer_cls, features):
    imp = importer_cls(features)
    data_pkg = imp.import_module("pf_demo.data")
    got = imp.load_pickle(data_pkg, "tensors.pkl")
    assert_same_value(STOCK(features).load_pickle("pf_demo.data", "tensors.pkl"), got)


def test_pyfleet_storages_alias_the_archive_mapping(features):
    """pyfleet only: stored storages are views of the archive's mapping (no copy)."""
    from conftest import pyfleet_importer_class

    imp = pyfleet_importer_class()(features)
    tensors = imp.load_pickle("pf_demo.data", "tensors.pkl")
    ranges = mapped_ranges(features)
    assert ranges, f"{features} is not mapped in this process"
    ptr = tensors["f32"].storage().data_ptr()
    assert any(lo <= ptr < hi for lo, hi in ranges), "storage bytes were copied out of the archive"
