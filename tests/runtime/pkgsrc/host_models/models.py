"""Small models with the shapes of input and output a serving host meets.

Each is pickled into its own package by make_host_packages.py with the stock exporter;
the expected results come from torch's own PackageImporter in Debian's python3.
"""
import time

import numpy
import torch
from torch import nn


class Mlp(nn.Module):
    """A plain model: one tensor in, one tensor out."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

    def forward(self, x):
        return self.net(x)


class Nested(nn.Module):
    """Nested structures both ways, and a keyword argument."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, inputs, pair, scale=1.0):
        a = self.proj(inputs["a"])
        b = inputs["b"] * scale
        first, second = pair
        return {
            "sum": a + b,
            "parts": [first * scale, second - 1],
            "meta": (int(a.shape[0]), "nested", scale),
        }


class UsesNumpy(nn.Module):
    """Model code that goes through numpy."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 3))

    def forward(self, x):
        y = numpy.tanh(x.detach().numpy()) @ self.weight.detach().numpy()
        return torch.from_numpy(numpy.ascontiguousarray(y))


class Autograd(nn.Module):
    """Model code that runs backward(): the gradient of a loss with respect to the input."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 1)

    def forward(self, x):
        x = x.detach().requires_grad_(True)
        loss = (self.lin(x) ** 2).sum()
        loss.backward()
        return x.grad


def _check(x):
    if x.dim() != 2:
        raise ValueError("expected a 2-d input, got %d dimensions" % x.dim())


class Raising(nn.Module):
    """Raises from a helper a level down, so the traceback has two frames of package code."""

    def forward(self, x):
        _check(x)
        return x


class Opaque:
    """An object with no IValue form."""


class ReturnsOpaque(nn.Module):
    def forward(self, x):
        return (x, {"payload": Opaque()})


class Spins(nn.Module):
    """Pure Python that never returns: only an interrupt stops it."""

    def forward(self, x):
        n = 0
        while True:
            n += 1


class Sleeps(nn.Module):
    """Native code that cannot be interrupted: time.sleep(seconds)."""

    def forward(self, seconds):
        time.sleep(seconds)
        return seconds


class Echo(nn.Module):
    """Returns its arguments as they arrived (a no-op model)."""

    def forward(self, *args, **kwargs):
        if kwargs:
            return args, kwargs
        return args[0] if len(args) == 1 else args
