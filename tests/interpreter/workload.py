"""The workload every interpreter of the pool tests runs, and that Debian's python3 runs
to make the reference (make_reference.py). It touches torch, numpy and the standard
library's C extensions (json, decimal, sqlite3, ctypes)."""

import ctypes
import decimal
import json
import sqlite3

import numpy
import torch


def compute():
    # Note: the default torch generator lives in the process-global LibTorch, so
    # torch.manual_seed() in concurrently running interpreters races. Each call uses a
    # private generator instead.
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    model.eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    x = torch.randn(8, 16, generator=g)
    with torch.no_grad():
        y = model(x)
    conn = sqlite3.connect(":memory:")
    conn.execute("create table t (v real)")
    conn.executemany("insert into t values (?)", [(v,) for v in y.flatten().tolist()])
    total = conn.execute("select sum(v) from t").fetchone()[0]
    conn.close()
    return {
        "y": y.tolist(),
        "sqlite_sum": total,
        "decimal": str(decimal.Decimal(7) / decimal.Decimal(3)),
        "numpy_sum": float(numpy.asarray(y.numpy()).sum()),
        "ctypes_abs": ctypes.CDLL(None).abs(-5),
        # ctypes.pythonapi must be this interpreter's own CPython copy.
        "py_is_initialized": ctypes.pythonapi.Py_IsInitialized(),
    }


def check(reference_json):
    """Raises AssertionError naming the first difference from the reference."""
    got = compute()
    want = json.loads(reference_json)
    assert set(got) == set(want), (sorted(got), sorted(want))
    assert torch.allclose(torch.tensor(got["y"]), torch.tensor(want["y"]), atol=1e-6), "model output differs"
    assert abs(got["sqlite_sum"] - want["sqlite_sum"]) < 1e-5, (got["sqlite_sum"], want["sqlite_sum"])
    assert abs(got["numpy_sum"] - want["numpy_sum"]) < 1e-5, (got["numpy_sum"], want["numpy_sum"])
    for key in ("decimal", "ctypes_abs", "py_is_initialized"):
        assert got[key] == want[key], (key, got[key], want[key])
    return True
