"""pyfleet.PackageImporter's storages over runtime/archive: zero copy, copy-on-write per
load, the copy option, and archive errors surfacing as typed Python errors.

    PYTHONPATH=<build>/python PYFLEET_ARCHIVE_FIXTURES=<build>/tests/archive/fixtures \\
        /usr/bin/python3 -m pytest tests/archive/test_importer_storages.py

The packages come from make_archive_fixtures.py (stock PackageExporter). Differential
tests against the stock importer live in tests/importer/.
"""
import os
import shutil

import pytest
import torch

import pyfleet

FIXTURES = os.environ["PYFLEET_ARCHIVE_FIXTURES"]


def fixture(name):
    return os.path.join(FIXTURES, name)


def file_mappings(path):
    """[(start, end)] of this process's mappings of `path`."""
    real = os.path.realpath(path)
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == real:
                start, end = (int(x, 16) for x in parts[0].split("-"))
                out.append((start, end))
    return out


def inside(ptr, ranges):
    return any(start <= ptr < end for start, end in ranges)


def test_storages_alias_a_mapping_of_the_archive():
    imp = pyfleet.PackageImporter(fixture("small.pt"))
    data = imp.load_pickle("res", "data.pkl")
    maps = file_mappings(fixture("small.pt"))
    for t in data.values():
        assert inside(t.data_ptr(), maps), "storage was copied"
        assert t.data_ptr() % 64 == 0
    assert torch.equal(data["w"], torch.arange(16, dtype=torch.float32))


def test_in_place_writes_stay_in_their_load():
    before = open(fixture("small.pt"), "rb").read()
    imp = pyfleet.PackageImporter(fixture("small.pt"))
    first = imp.load_pickle("res", "data.pkl")
    first["w"].add_(100)  # copy-on-write page of this load's mapping
    second = imp.load_pickle("res", "data.pkl")
    other = pyfleet.PackageImporter(fixture("small.pt")).load_pickle("res", "data.pkl")
    assert torch.equal(second["w"], torch.arange(16, dtype=torch.float32))
    assert torch.equal(other["w"], torch.arange(16, dtype=torch.float32))
    assert first["w"][0].item() == 100
    assert open(fixture("small.pt"), "rb").read() == before


def test_storages_of_one_load_share_memory():
    imp = pyfleet.PackageImporter(fixture("small.pt"))
    a = imp.load_pickle("res", "data.pkl")
    b = imp.load_pickle("res", "data.pkl")
    assert a["w"].data_ptr() != b["w"].data_ptr()  # one mapping per load


def test_copy_storages_makes_private_copies():
    imp = pyfleet.PackageImporter(fixture("small.pt"))
    data = imp.load_pickle("res", "data.pkl", copy_storages=True)
    maps = file_mappings(fixture("small.pt"))
    assert not any(inside(t.data_ptr(), maps) for t in data.values())
    assert torch.equal(data["w"], torch.arange(16, dtype=torch.float32))


def test_binary_file_object_storages_alias_the_in_memory_archive():
    with open(fixture("small.pt"), "rb") as f:
        imp = pyfleet.PackageImporter(f)
        data = imp.load_pickle("res", "data.pkl")
    assert imp.filename == "<binary>"
    assert torch.equal(data["b"], torch.ones(3, dtype=torch.int64))
    assert data["w"].data_ptr() % 64 == 0


def test_deflated_records_load():
    imp = pyfleet.PackageImporter(fixture("deflated.pt"))
    assert torch.equal(imp.load_pickle("res", "data.pkl")["w"], torch.arange(16, dtype=torch.float32))
    assert imp.load_text("res", "hello.txt") == "hello world\n"
    assert imp.import_module("mod").VALUE == 42


def test_zip64_archive_loads():
    imp = pyfleet.PackageImporter(fixture("zip64.pt"))
    assert imp.load_text("res", "hello.txt") == "hello world\n"


def test_crc_mismatch_is_a_runtime_error_naming_archive_and_record():
    imp = pyfleet.PackageImporter(fixture("crc_stored.pt"))
    with pytest.raises(RuntimeError) as e:
        imp.load_pickle("res", "data.pkl")
    assert fixture("crc_stored.pt") in str(e.value)
    assert "'.data/0.storage': CRC-32 check failed" in str(e.value)
    # The importer, and the process, stay usable.
    assert imp.load_text("res", "hello.txt") == "hello world\n"
    assert imp.import_module("mod").VALUE == 42
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
        imp.load_text("res", "hello.txt")
    assert message in str(e.value) and "res/hello.txt" in str(e.value)
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
    data = imp.load_pickle("res", "data.pkl")
    storage_file = root / ".data" / "0.storage"
    assert inside(data["w"].data_ptr(), file_mappings(str(storage_file)))
    before = storage_file.read_bytes()
    data["w"].add_(1)
    assert storage_file.read_bytes() == before
    with pytest.raises(FileNotFoundError):
        imp.load_binary("res", "nope.txt")
