"""Writes pyfleet's example packages with torch 1.13's STOCK PackageExporter, each with a
TorchScript twin, following the package convention pyfleet-bench reads:

    OUT/NAME.pt       model/model.pkl (the model), model/example.pkl (a tuple of args)
    OUT/NAME.jit.pt   the same model as TorchScript (torch.jit.save)

    /usr/bin/python3 benchmarks/packages/make_example_packages.py OUT [NAME...]

NAME: mlp (a small MLP), gil_bound (many small ops and Python control flow),
resnet18 (torchvision's ResNet-18). Weights are random with a fixed seed: nothing is
downloaded.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "pkgsrc"))

import torch  # noqa: E402
from torch.package import PackageExporter  # noqa: E402

from pyfleet_examples import models  # noqa: E402

SEED = 2024


def _resnet18():
    import torchvision  # python3-torchvision: architecture only, random init

    return torchvision.models.resnet18(weights=None), (torch.randn(1, 3, 224, 224),)


EXAMPLES = {
    "mlp": lambda: (models.SmallMlp(), (torch.randn(1, 256),)),
    "gil_bound": lambda: (models.GilBound(), (torch.randn(1, 8),)),
    "resnet18": _resnet18,
}


def write(out, name):
    torch.manual_seed(SEED)
    model, example = EXAMPLES[name]()
    model.eval()
    path = os.path.join(out, name + ".pt")
    with PackageExporter(path) as e:
        e.intern("pyfleet_examples.**")
        e.extern(["torchvision.**", "numpy.**", "PIL.**"])
        e.save_pickle("model", "model.pkl", model)
        e.save_pickle("model", "example.pkl", example)
    scripted = torch.jit.script(model)
    torch.jit.save(scripted, os.path.join(out, name + ".jit.pt"))
    with torch.no_grad():
        assert torch.allclose(scripted(*example), model(*example), atol=1e-5), name


def main(argv):
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    for name in argv[2:] or sorted(EXAMPLES):
        write(out, name)


if __name__ == "__main__":
    main(sys.argv)
