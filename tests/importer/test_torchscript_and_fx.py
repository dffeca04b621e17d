"""TorchScript modules and FX GraphModules stored in packages."""
import io

import pytest
import torch
import torch.package.package_exporter
from torch.package import PackageExporter, sys_importer

from conftest import STOCK
from differ import assert_same_storage_sharing, assert_same_value, normalize


@pytest.mark.parametrize("resource", ["scripted.pkl", "traced.pkl"])
def test_script_modules_match_stock(importer_cls, script_pkg, resource):
    ref = STOCK(script_pkg).load_pickle("models", resource)
    got = importer_cls(script_pkg).load_pickle("models", resource)
    assert_same_value(ref, got)
    x = torch.randn(2, 4) if resource == "scripted.pkl" else torch.randn(2, 3, 8, 8)
    assert torch.equal(got(x), ref(x))


def test_script_and_eager_objects_share_storages(importer_cls, script_pkg):
    ref = STOCK(script_pkg).load_pickle("models", "mixed.pkl")
    got = importer_cls(script_pkg).load_pickle("models", "mixed.pkl")
    assert_same_value(ref, got)
    assert_same_storage_sharing(ref, got)
    assert got["weight"].data_ptr() == got["scripted"].lin.weight.data_ptr()


def test_script_module_loaded_twice_from_one_importer(importer_cls, script_pkg):
    imp = importer_cls(script_pkg)
    a = imp.load_pickle("models", "scripted.pkl")
    b = imp.load_pickle("models", "scripted.pkl")
    x = torch.randn(1, 4)
    assert torch.equal(a(x), b(x))


def test_script_module_with_map_location(importer_cls, script_pkg):
    got = importer_cls(script_pkg).load_pickle("models", "traced.pkl", map_location="cpu")
    ref = STOCK(script_pkg).load_pickle("models", "traced.pkl", map_location="cpu")
    assert_same_value(ref, got)


def test_script_module_reexport(importer_cls, script_pkg, monkeypatch):
    monkeypatch.setattr(torch.package.package_exporter, "_gate_torchscript_serialization", False)
    imp = importer_cls(script_pkg)
    sm = imp.load_pickle("models", "scripted.pkl")
    buf = io.BytesIO()
    with PackageExporter(buf, importer=(imp, sys_importer)) as exp:
        exp.save_pickle("again", "sm.pkl", sm)
    buf.seek(0)
    x = torch.randn(3, 4)
    assert torch.equal(STOCK(buf).load_pickle("again", "sm.pkl")(x), sm(x))


@pytest.mark.parametrize("resource", ["graph_module.pkl", "graph_and_tensor.pkl"])
def test_fx_graph_modules_match_stock(importer_cls, fx_pkg, resource):
    ref = STOCK(fx_pkg).load_pickle("fx", resource)
    got = importer_cls(fx_pkg).load_pickle("fx", resource)
    rg = ref if resource == "graph_module.pkl" else ref["gm"]
    gg = got if resource == "graph_module.pkl" else got["gm"]
    assert isinstance(gg, torch.fx.GraphModule)
    assert normalize(gg.code) == normalize(rg.code)
    assert str(gg.graph) == str(rg.graph)
    assert_same_value(rg.state_dict(), gg.state_dict())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(gg(x), rg(x))
    assert type(gg).__module__ == type(rg).__module__  # torch.fx's own class


def test_fx_generated_code_lives_in_the_importer(importer_cls, fx_pkg):
    imp = importer_cls(fx_pkg)
    gm = imp.load_pickle("fx", "graph_module.pkl")
    fwd_module = gm.forward.__globals__.get("__name__", "")
    ref_module = STOCK(fx_pkg).load_pickle("fx", "graph_module.pkl").forward.__globals__.get("__name__", "")
    assert normalize(fwd_module) == normalize(ref_module)


def test_fx_reexport(importer_cls, fx_pkg):
    imp = importer_cls(fx_pkg)
    gm = imp.load_pickle("fx", "graph_module.pkl")
    buf = io.BytesIO()
    with PackageExporter(buf, importer=(imp, sys_importer)) as exp:
        exp.intern("pf_demo.**")
        exp.extern("numpy.**")
        exp.save_pickle("again", "gm.pkl", gm)
    buf.seek(0)
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(STOCK(buf).load_pickle("again", "gm.pkl")(x), gm(x))
