"""Writes pyfleet-demo's default package: a torchvision ResNet-18 with random weights,
saved with torch 1.13's stock torch.package.PackageExporter. Nothing is downloaded.

    /usr/bin/python3 runtime/tools/make_demo_package.py OUT.pt

The package holds the model pickle "model/model.pkl", an example input
"model/example.pkl" and what stock torch computes for it, "model/expected.pkl"; the
same three for a small-op MLP under "small/"; torchvision's code is interned (travels in the package), everything else
is extern (the interpreter's own modules).
"""
import sys

import torch
import torchvision
from torch.package import PackageExporter


def main(out_path):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    example = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = model(example)
    with PackageExporter(out_path) as exporter:
        exporter.intern("torchvision.**")
        exporter.extern("**", exclude=["torchvision.**"])
        exporter.save_pickle("model", "model.pkl", model)
        exporter.save_pickle("model", "example.pkl", example)
        exporter.save_pickle("model", "expected.pkl", expected)
        # A small-op model (where the GIL, not arithmetic, is the bottleneck).
        small = torch.nn.Sequential(*[m for _ in range(6) for m in (torch.nn.Linear(32, 32), torch.nn.ReLU())]).eval()
        small_example = torch.randn(1, 32)
        with torch.no_grad():
            small_expected = small(small_example)
        exporter.save_pickle("small", "model.pkl", small)
        exporter.save_pickle("small", "example.pkl", small_example)
        exporter.save_pickle("small", "expected.pkl", small_expected)


if __name__ == "__main__":
    main(sys.argv[1])
