"""A plain model whose module imports nothing but torch (and math, on the allowlist)."""
import math

import torch
from torch import nn


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        self.scale = math.sqrt(4.0)

    def forward(self, x):
        return self.net(x) * self.scale
