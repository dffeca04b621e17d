"""pyfleet-serve's helpers inside each interpreter.

pyfleet-serve registers this source as module `pyfleet_serve_support` in every
interpreter of its manager (the file is embedded at build time; it stays importable and
testable with a plain python3):

    import pyfleet_serve_support as s
    s.register("resnet18", model)        # this interpreter's copy of the model
    call = s.InferenceCall("resnet18")   # what the server replicates and calls
    y = call(x)                          # model(x) under torch.no_grad()

Note [Calls run under no_grad]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A served model runs under torch.no_grad(), as a Python user serving it would: without
it every output keeps its autograd graph (and ResNet's activations) alive until the
answer is sent, and small-op models run ~1.5x slower. Grad mode is a thread-local of the
one LibTorch, and asynchronous calls run on the host API's worker threads, which the
server cannot reach; so the server replicates an InferenceCall, whose __call__ enters
no_grad around the model. The model itself is not pickled for that: each interpreter's
copy (loaded from the package, its weights aliasing the package mapping) is registered
here under the model's name, and the InferenceCall carries only that name.
"""
import inspect

import torch

_models = {}


def register(key, model):
    """Makes `model` the model InferenceCall(key) calls in this interpreter."""
    _models[key] = model


class InferenceCall:
    """Calls the model registered under `key` in the calling interpreter, without grad."""

    def __init__(self, key):
        self.key = key

    def __call__(self, *args):
        model = _models[self.key]
        with torch.no_grad():
            return model(*args)


def argument_names(model, count):
    """The names of the first `count` positional parameters of `model` (its forward for
    an nn.Module), or [] when they cannot be told (no signature, *args, too few)."""
    fn = model.forward if isinstance(model, torch.nn.Module) else model
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in parameters if p.kind in positional]
    if len(names) < count or len(set(names[:count])) < count:
        return []
    return names[:count]
