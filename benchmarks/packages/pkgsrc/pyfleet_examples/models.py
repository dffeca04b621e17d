"""Example models, each scriptable so that its TorchScript twin runs the same code.

* SmallMlp: a few dense layers, native-bound (matmuls), one example row.
* GilBound: many small ops and Python control flow per call: the interpreter's time is
  mostly Python bytecode, so threads sharing one GIL serialise on it.
"""
from typing import List

import torch
from torch import nn


class SmallMlp(nn.Module):
    def __init__(self, width: int = 256, depth: int = 3):
        super().__init__()
        layers: List[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(width, width), nn.ReLU()]
        layers.append(nn.Linear(width, 10))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GilBound(nn.Module):
    """About 150 tiny tensor ops and as many Python branches per call."""

    def __init__(self, width: int = 8, steps: int = 50):
        super().__init__()
        self.steps = steps
        self.weight = nn.Parameter(torch.randn(width, width) * 0.1)
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        history: List[float] = []
        for step in range(self.steps):
            h = torch.tanh(h @ self.weight + self.bias)
            if step % 3 == 0:
                h = h * 0.5
            elif step % 3 == 1:
                h = h + 0.1
            history.append(float(h.sum()))
            if len(history) > 4:
                history.pop(0)
        return h + sum(history)
