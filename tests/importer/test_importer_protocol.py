"""The importer is a torch.package.Importer: get_name, OrderedImporter and re-export work."""
import io

import pytest
import torch
from torch.package import Importer, OrderedImporter, PackageExporter, sys_importer

import fixture_spec as spec
from conftest import STOCK
from differ import assert_same_value


def test_is_a_torch_package_importer(importer_cls, features):
    imp = importer_cls(features)
    assert isinstance(imp, Importer)
    assert callable(imp.import_module) and callable(imp.get_name) and callable(imp.whichmodule)


def test_get_name_round_trips_packaged_objects(importer_cls, features):
    imp = importer_cls(features)
    model = imp.load_pickle("pf_demo.data", "model.pkl")
    module_name, name = imp.get_name(type(model))
    assert (module_name, name) == ("pf_demo.models", "Mlp")
    assert getattr(imp.import_module(module_name), name) is type(model)


def test_ordered_importer_resolves_through_package_then_sys(importer_cls, features):
    imp = importer_cls(features)
    ordered = OrderedImporter(imp, sys_importer)
    assert ordered.import_module("pf_demo.models") is imp.import_module("pf_demo.models")
    assert ordered.import_module("json") is __import__("json")
    model = imp.load_pickle("pf_demo.data", "model.pkl")
    assert ordered.get_name(type(model)) == ("pf_demo.models", "Mlp")


def _reexport(imp, obj):
    buf = io.BytesIO()
    with PackageExporter(buf, importer=(imp, sys_importer)) as exp:
        exp.intern("pf_demo.**")
        exp.mock("pf_mockme.**")
        exp.extern(["numpy.**"])
        exp.save_pickle("again", "obj.pkl", obj)
        exp.save_module("pf_demo.util.helpers")
    buf.seek(0)
    return buf


@pytest.mark.parametrize("resource", ["model.pkl", "objects.pkl", "tensors.pkl"])
def test_reexport_through_package_exporter(importer_cls, features, resource):
    imp = importer_cls(features)
    obj = imp.load_pickle("pf_demo.data", resource)
    buf = _reexport(imp, obj)
    again = STOCK(buf).load_pickle("again", "obj.pkl")
    assert_same_value(STOCK(features).load_pickle("pf_demo.data", resource), again)


def test_reexported_package_loads_with_same_importer_class(importer_cls, features):
    imp = importer_cls(features)
    model = imp.load_pickle("pf_demo.data", "model.pkl")
    buf = _reexport(imp, model)
    again = importer_cls(buf).load_pickle("again", "obj.pkl")
    x = torch.randn(3, 8)
    assert torch.equal(again(x), model(x))


def test_reexport_source_comes_from_the_package(importer_cls, features):
    imp = importer_cls(features)
    buf = _reexport(imp, imp.load_pickle("pf_demo.data", "objects.pkl"))
    src = STOCK(buf).load_text("pf_demo.util", "helpers.py")
    assert src == imp.load_text("pf_demo.util", "helpers.py")


def test_exporter_refuses_mixing_importer_objects_like_stock(importer_cls, features):
    """Pickling an object from importer A with only sys_importer fails the same way."""
    imp = importer_cls(features)
    model = imp.load_pickle("pf_demo.data", "model.pkl")
    ref_model = STOCK(features).load_pickle("pf_demo.data", "model.pkl")

    def attempt(obj):
        try:
            with PackageExporter(io.BytesIO()) as exp:
                exp.intern("pf_demo.**")
                exp.save_pickle("x", "y.pkl", obj)
        except Exception as e:  # noqa: BLE001
            return type(e)
        return None

    assert attempt(model) is attempt(ref_model) is not None


def test_reexport_of_many_modules_package(importer_cls, many_pkg):
    imp = importer_cls(many_pkg)
    buf = io.BytesIO()
    with PackageExporter(buf, importer=(imp, sys_importer)) as exp:
        exp.intern("pf_many.**")
        exp.save_module("pf_many")
    buf.seek(0)
    assert STOCK(buf).import_module("pf_many").COUNT == spec.MANY_MODULES_COUNT
