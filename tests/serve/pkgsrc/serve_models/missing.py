"""A model whose package externs this module, which interpreters cannot import (it is
not on their sys.path): the package fails to load (tests/serve: a model that fails to
load makes the server not ready)."""
from torch import nn


class NeedsMissingModule(nn.Module):
    def forward(self, x):
        return x
