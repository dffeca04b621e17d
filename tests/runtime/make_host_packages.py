"""Writes the host-API test packages with torch 1.13's STOCK PackageExporter, and the
results torch's own PackageImporter gives for them (the reference the C++ tests compare
pyfleet's results with).

    /usr/bin/python3 tests/runtime/make_host_packages.py OUT_DIR

OUT_DIR/<name>.pt: `model/model.pkl` is the model, `model/example.pkl` a tuple of
positional arguments. OUT_DIR/reference.pt (torch.save): {name: {"args": tuple,
"kwargs": dict, "expected": result}} computed in THIS process through the stock
PackageImporter of each written package. Weights are random with a fixed seed.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "pkgsrc"))

import torch  # noqa: E402
from torch.package import PackageExporter, PackageImporter  # noqa: E402

from host_models import models  # noqa: E402

SEED = 4321


def inputs():
    g = torch.Generator().manual_seed(SEED)
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    return {
        "mlp": ((r(3, 16),), {}),
        "nested": (({"a": r(2, 8), "b": r(2, 8)}, (r(4), r(2, 3))), {"scale": 0.5}),
        "numpy_model": ((r(4, 6),), {}),
        "autograd": ((r(3, 5),), {}),
        "raising": ((r(3),), {}),
        "opaque": ((r(2),), {}),
        "spins": ((r(1),), {}),
        "sleeps": ((0.01,), {}),
        "echo": ((r(2),), {}),
    }


def build():
    torch.manual_seed(SEED)
    return {
        "mlp": models.Mlp(),
        "nested": models.Nested(),
        "numpy_model": models.UsesNumpy(),
        "autograd": models.Autograd(),
        "raising": models.Raising(),
        "opaque": models.ReturnsOpaque(),
        "spins": models.Spins(),
        "sleeps": models.Sleeps(),
        "echo": models.Echo(),
    }


def main(out):
    os.makedirs(out, exist_ok=True)
    reference = {}
    for name, model in build().items():
        args, kwargs = inputs()[name]
        path = os.path.join(out, name + ".pt")
        with PackageExporter(path) as e:
            e.extern(["numpy", "numpy.**"])
            e.intern("host_models.**")
            e.save_pickle("model", "model.pkl", model)
            e.save_pickle("model", "example.pkl", args)
        if name in ("raising", "opaque", "spins", "sleeps"):
            continue  # no result to compare: these fail, never return or wait
        loaded = PackageImporter(path).load_pickle("model", "model.pkl")
        reference[name] = {"args": args, "kwargs": kwargs, "expected": loaded(*args, **kwargs)}
    torch.save(reference, os.path.join(out, "reference.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
