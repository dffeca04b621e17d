"""Writes the security tests' packages with torch 1.13's STOCK PackageExporter.

    /usr/bin/python3 tests/security/make_security_packages.py OUT_DIR

OUT_DIR/model.pt       secmodels.models.Mlp: model/model.pkl (the model: a package class),
                       model/state_dict.pkl, model/tensors.pkl (tensors, a Parameter, a
                       torch.Size, a dtype, nested containers), model/example.pkl (an input),
                       model/evil.pkl (a pickle that calls os.system when unpickled).
OUT_DIR/behaviours.pt  modules that misbehave AT IMPORT TIME: secmodels.spawns
                       (subprocess.run), secmodels.connects (socket.create_connection),
                       secmodels.writes (open(..., "w")), and secmodels.uses_json /
                       secmodels.uses_math (import the extern modules json / math).
OUT_DIR/vision.pt      torchvision's SqueezeNet 1.1 (random weights; torchvision extern):
                       model/model.pkl, model/example.pkl.
OUT_DIR/digests.txt    "<file name> <sha256>" per package, from hashlib (the oracle the
                       pinning tests compare pyfleet's digests with).
Weights are random with a fixed seed.
"""
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "pkgsrc"))

import torch  # noqa: E402
from torch.package import PackageExporter  # noqa: E402

from secmodels import evil, models  # noqa: E402

SEED = 578  # PEP 578: audit hooks

BEHAVIOURS = ("spawns", "connects", "writes", "uses_json", "uses_math")


def source(name):
    with open(os.path.join(HERE, "pkgsrc", "secmodels", name + ".py")) as f:
        return f.read()


def write_model(path):
    torch.manual_seed(SEED)
    model = models.Mlp()
    with PackageExporter(path) as e:
        e.intern("secmodels.**")
        e.save_pickle("model", "model.pkl", model)
        e.save_pickle("model", "state_dict.pkl", model.state_dict())
        e.save_pickle("model", "tensors.pkl", {
            "ints": torch.arange(6, dtype=torch.int64).reshape(2, 3),
            "halves": [torch.ones(3, dtype=torch.float16), (torch.zeros(2, dtype=torch.bool),)],
            "param": torch.nn.Parameter(torch.full((2,), 0.5)),
            "size": torch.Size([4, 5]),
            "dtype": torch.float32,
            "plain": {"n": 3, "s": "text", "f": 1.5, "none": None},
        })
        e.save_pickle("model", "example.pkl", torch.randn(2, 8))
        e.save_pickle("model", "evil.pkl", evil.Evil())


def write_behaviours(path):
    with PackageExporter(path) as e:
        # From source: the exporter must not import (run) these modules.
        e.save_source_string("secmodels", source("__init__"), is_package=True)
        for name in BEHAVIOURS:
            e.save_source_string("secmodels." + name, source(name))


def write_vision(path):
    import torchvision

    torch.manual_seed(SEED)
    model = torchvision.models.squeezenet1_1(weights=None).eval()
    with PackageExporter(path) as e:
        e.extern(["torchvision", "torchvision.**"])
        e.save_pickle("model", "model.pkl", model)
        e.save_pickle("model", "example.pkl", torch.randn(1, 3, 64, 64))


def main(out):
    os.makedirs(out, exist_ok=True)
    written = {"model.pt": write_model, "behaviours.pt": write_behaviours, "vision.pt": write_vision}
    lines = []
    for name, write in written.items():
        path = os.path.join(out, name)
        write(path)
        with open(path, "rb") as f:
            lines.append("%s %s\n" % (name, hashlib.sha256(f.read()).hexdigest()))
    with open(os.path.join(out, "digests.txt"), "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main(sys.argv[1])
