"""Writes pyfleet-serve's test packages with torch 1.13's STOCK PackageExporter, in the
package convention pyfleet-serve reads (model/model.pkl, model/example.pkl: a tuple of
positional arguments):

    /usr/bin/python3 tests/serve/make_serve_packages.py OUT

OUT/raiser.pt, sleeper.pt, all_types.pt (serve_models.models) and broken.pt, whose
model needs a module the interpreters cannot import (it fails to load).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "pkgsrc"))

import torch  # noqa: E402
from torch.package import PackageExporter  # noqa: E402

from serve_models import missing, models  # noqa: E402


def all_types_example():
    return (
        torch.tensor([True, False, True]),
        torch.tensor([0, 7, 254], dtype=torch.uint8),
        torch.tensor([-128, 0, 127], dtype=torch.int8),
        torch.tensor([-300, 0, 300], dtype=torch.int16),
        torch.tensor([-70000, 0, 70000], dtype=torch.int32),
        torch.tensor([-(2**40), 0, 2**40], dtype=torch.int64),
        torch.tensor([0.5, -1.25, 3.0], dtype=torch.float16),
        torch.tensor([0.1, -2.5, 1e-3], dtype=torch.float32),
        torch.tensor([1.0, -2.0, 1e100], dtype=torch.float64),
    )


PACKAGES = {
    "raiser": (models.Raiser, lambda: (torch.ones(1, 4),)),
    "sleeper": (models.Sleeper, lambda: (torch.tensor([0.0]),)),
    "all_types": (models.AllTypes, all_types_example),
}


def write(path, model, example, extern=()):
    with PackageExporter(path) as e:
        for module in extern:
            e.extern(module)
        e.intern("serve_models.**")
        e.save_pickle("model", "model.pkl", model)
        e.save_pickle("model", "example.pkl", example)


def main(out):
    os.makedirs(out, exist_ok=True)
    for name, (cls, example) in PACKAGES.items():
        write(os.path.join(out, name + ".pt"), cls().eval(), example())
    write(os.path.join(out, "broken.pt"), missing.NeedsMissingModule(), (torch.ones(1),),
          extern=["serve_models.missing"])


if __name__ == "__main__":
    main(sys.argv[1])
