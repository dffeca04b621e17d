"""pyfleet.PackageImporter's storages over runtime/archive: zero copy, copy-on-write per
load, the copy option, and archive errors surfacing as typed Python errors.

    PYTHONPATH=<build>/python PYFLEET_FIXTURES_DIR=<build>/fixtures \\
        PYFLEET_ARCHIVE_FIXTURES=<build>/fixtures/archive \\
        /usr/bin/python3 -m pytest tests/archive/test_importer_storages.py

small.pt is tests/fixtures' stock package (gen_packages.py); the other archives are the
variants make_archive_fixtures.py rewrote from it. Differential tests against the stock
importer live in tests/importer/.
"""
import os
import shutil
import sys

import pytest
import torch

import pyfleet

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures"))
import fixture_spec as spec  # noqa: E402
from proc_maps import mapped_ranges as file_mappings  # noqa: E402

FIXTURES = os.environ["PYFLEET_ARCHIVE_FIXTURES"]
SMALL = spec.fixture_path(spec.SMALL)
PKG, PICKLE, TEXT = "pf_demo.data", "tensors.pkl", "hello.txt"  # in small.pt
MODULE = "pf_demo.util.maths"
ARANGE = torch.arange(16, dtype=torch.float32)  # tensors.pkl["a"], .data/0.storage


def fixture(name):
    return SMALL if name == spec.SMALL else os.path.join(FIXTURES, name)


def inside(ptr, ranges):
    return any(start <= ptr < end for start, end in ranges)


def test_storages_alias_a_mapping_of_the_archive():
    imp = pyfleet.PackageImporter(fixture("small.pt"))
    data = imp.load_pickle(PKG, PICKLE)
    maps = file_mappings(fixture("small.pt"))
    for t in data.values():
        assert inside(t.data_ptr(), maps), "storage was copied"
        assert t.data_ptr() % 64 == 0
    assert torch.equal(data["a"], ARANGE)
    assert torch.equal(data["b"], torch.ones(3, 3))


def test_in_place_writes_stay_in_their_load():
    before = open(fixture("small.pt"), "rb").read()
    imp = pyfleet.PackageImporter(fixture("small.pt"))
    first = imp.load_pickle(PKG, PICKLE)
    first["a"].add_(100)  # copy-on-write page of this load's mapping
    second = imp.load_pickle(PKG, PICKLE)
    other = pyfleet.PackageImporter(fixture("small.pt")).load_pickle(PKG, PICKLE)
    assert torch.equal(second["a"], ARANGE)
    assert torch.equal(other["a"], ARANGE)
    assert first["a"][0].item() == 100
    assert open(fixture("small.pt"), "rb").read() == before


def test_storages_of_one_load_share_memory():
    imp = pyfleet.PackageImporter(fixture("small.pt"))
    a = imp.load_pickle(PKG, PICKLE)
    b = imp.load_pickle(PKG, PICKLE)
    assert a["a"].data_ptr() != b["a"].data_ptr()  # one mapping per load


def test_copy_storages_makes_private_copies():
    imp = pyfleet.PackageImporter(fixture("small.pt"))
    data = imp.load_pickle(PKG, PICKLE, copy_storages=True)
    maps = file_mappings(fixture("small.pt"))
    assert maps, "the archive is not mapped"
    assert not any(inside(t.data_ptr(), maps) for t in data.values())
    assert torch.equal(data["a"], ARANGE)


def test_binary_file_object_storages_alias_the_in_memory_archive():
    with open(fixture("small.pt"), "rb") as f:
        imp = pyfleet.PackageImporter(f)
        data = imp.load_pickle(PKG, PICKLE)
    assert imp.filename == "<binary>"
    assert torch.equal(data["b"], torch.ones(3, 3))
    assert data["a"].data_ptr() % 64 == 0


def test_deflated_records_load():
    imp = pyfleet.PackageImporter(fixture("deflated.pt"))
    assert torch.equal(imp.load_pickle(PKG, PICKLE)["a"], ARANGE)
    assert imp.load_text(PKG, TEXT) == spec.HELLO_TEXT
    assert imp.import_module(MODULE).cube(3) == 27


def test_zip64_archive_loads():
    imp = pyfleet.PackageImporter(fixture("zip64.pt"))
    assert imp.load_text(PKG, TEXT) == spec.HELLO_TEXT
    assert torch.equal(imp.load_pickle(PKG, PICKLE)["a"], ARANGE)


def test_crc_mismatch_is_a_runtime_error_naming_archive_and_record():
    imp = pyfleet.PackageImporter(fixture("crc_stored.pt"))
    with pytest.raises(RuntimeError) as e:
        imp.load_pickle(PKG, PICKLE)
    assert fixture("crc_stored.pt") in str(e.value)
    assert "'.data/0.storage': CRC-32 check failed" in str(e.value)
    # The importer, and the process, stay usable.
    assert imp.load_text(PKG, TEXT) == spec.HELLO_TEXT
    assert imp.import_module(MODULE).cube(3) == 27
    assert imp.storage_context is None and imp.last_map_location is None


@pytest.mark.parametrize("name,message", [
    ("bomb_small_declared.pt", "declared size lies"),
    ("bomb_large_declared.pt", "declared size lies"),
    ("corrupt_deflate.pt", "decompression failed or archive is corrupted"),
    ("crc_deflated.pt", "CRC-32 check failed"),
])
def test_bad_deflated_record_fails_on_read(name, message):
    imp = pyfleet.PackageImporter(fixture(name))
    with pytest.raises(RuntimeError) as e:
        imp.load_text(PKG, TEXT)
    assert message in str(e.value) and "pf_demo/data/hello.txt" in str(e.value)
    assert fixture(name) in str(e.value)


@pytest.mark.parametrize("name,message", [
    ("dotdot.pt", "record 'small/../evil.py' has an unsafe name"),
    ("bomb_huge_declared.pt", "declared size lies"),
    ("beyond_end.pt", "extends beyond the end of the archive"),
    ("garbage.pt", "PytorchStreamReader failed reading zip archive: failed finding central directory"),
])
def test_bad_archive_fails_in_constructor(name, message):
    with pytest.raises(RuntimeError) as e:
        pyfleet.PackageImporter(fixture(name))
    assert message in str(e.value)


def test_directory_package_storages_are_private_file_mappings(tmp_path):
    root = tmp_path / "pkg"
    shutil.copytree(fixture("unzipped/pkg"), root)
    imp = pyfleet.PackageImporter(str(root))
    data = imp.load_pickle(PKG, PICKLE)
    storage_file = root / ".data" / "0.storage"
    assert inside(data["a"].data_ptr(), file_mappings(str(storage_file)))
    before = storage_file.read_bytes()
    data["a"].add_(1)
    assert storage_file.read_bytes() == before
    with pytest.raises(FileNotFoundError) as e:
        imp.load_binary(PKG, "nope.txt")
    assert "pf_demo/data/nope.txt" in str(e.value)
