"""pytest plugin: runs torch's own test/package suite with pyfleet.PackageImporter.

Loaded with `-p pyfleet_swap` (run_torch_suite.py does this). At import time, before pytest
collects (and so imports) any test module, it replaces the class in every place torch's
tests and torch itself look it up: torch.package.PackageImporter and
torch.package.package_importer.PackageImporter. Test modules that do
`from torch.package import PackageImporter` therefore bind pyfleet's class.

    cd pytorch-1.13.1/test && PYTHONPATH=<build>/python:<this dir> \\
        python3 -m pytest package -p pyfleet_swap
"""
import sys

import torch.package
import torch.package.package_importer

import pyfleet  # an ImportError here fails the whole run, loudly

STOCK = torch.package.package_importer.PackageImporter
SWAPPED = pyfleet.PackageImporter

torch.package.PackageImporter = SWAPPED
torch.package.package_importer.PackageImporter = SWAPPED
# run_torch_suite.py checks for this line to know the swap happened.
print(f"pyfleet_swap: swapped in {SWAPPED.__module__}.{SWAPPED.__qualname__} from {pyfleet.__file__}",
      file=sys.stderr, flush=True)


def pytest_report_header(config):
    return [f"pyfleet_swap: torch.package.PackageImporter -> {SWAPPED.__module__}.{SWAPPED.__qualname__}"
            f" (from {pyfleet.__file__})"]


def pytest_collection_finish(session):
    # A test module could have cached the stock class before this plugin ran only if
    # torch.package were imported first by something else; make that visible.
    assert torch.package.PackageImporter is SWAPPED, "the swap was undone during collection"
