"""The pyfleet module (the C++ importer, built for Debian's python3) sets up its torch
helpers on first use; when that fails part-way (here: a torch module it needs cannot be
imported), a later attempt must not leak the references the failed one already took
(item 6 of issue 7: Load() overwrote its output field without releasing it).

Runs in a fresh python3 per test: the helpers are set up once per process.
"""
import os
import subprocess
import sys

CHILD = r"""
import sys
import torch, torch.package
import pyfleet

sys.modules["torch.package._directory_reader"] = None  # makes the setup fail part-way
probes = [torch.frombuffer, torch.empty, torch.uint8]

def attempt():
    try:
        pyfleet.PackageImporter("/nonexistent/pyfleet_retry.pt")
    except ImportError as e:
        assert "_directory_reader" in str(e), e
    else:
        raise SystemExit("expected ImportError")

attempt()
before = [sys.getrefcount(p) for p in probes]
for _ in range(25):
    attempt()
after = [sys.getrefcount(p) for p in probes]
print([a - b for a, b in zip(after, before)])
"""


def test_failed_torch_setup_retried_does_not_leak():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=os.environ)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 0, 0]", out.stdout + out.stderr
