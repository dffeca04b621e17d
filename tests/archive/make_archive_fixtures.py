"""Writes the archive variants tests/archive reads, into FIXTURES_DIR/archive.

Every variant is rewritten from the stock packages of tests/fixtures (small.pt and
script.pt, written by gen_packages.py with torch 1.13.1's PackageExporter) through
tests/fixtures/ziptools.py, the fixtures' one ZIP writer: other layouts of the same
records (ZIP64, everything deflated) and archives with one defect each. Unlike
gen_broken_packages.py, the variants keep the top-level folder "small", so the
tests can compare torch's exact messages. Run after gen_packages.py, with Debian's
/usr/bin/python3:

    /usr/bin/python3 tests/archive/make_archive_fixtures.py FIXTURES_DIR [STAMP]
"""
import os
import shutil
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fixtures"))

import torch  # noqa: E402

import fixture_spec as spec  # noqa: E402
import ziptools  # noqa: E402
from ziptools import DEFLATED, Entry  # noqa: E402

ARCHIVE_DIR = "archive"  # under the fixtures folder
# The records of small.pt the defects are made in.
TEXT = "pf_demo/data/hello.txt"
STORAGE = ".data/0.storage"
MODULE = "pf_demo/util/maths.py"


def _rel(entry):
    """The record name without the top-level folder, as PyTorchFileReader names it."""
    return entry.name.split("/", 1)[1]


def variant(small, out, name, change=None, zip64=False):
    """small.pt's records, each passed through change(entry) (None drops it), as `name`."""
    entries = []
    for e in ziptools.read_entries(small):
        e = change(e) if change is not None else e
        if e is not None:
            entries.append(e)
    ziptools.write_zip(os.path.join(out, name), entries, zip64=zip64)


def only(rel, make):
    """A change that applies make(entry) to the record `rel` and keeps the others."""
    return lambda e: make(e) if _rel(e) == rel else e


def edit(**fields):
    """make(entry) that sets `fields` on the entry."""

    def make(e):
        for k, v in fields.items():
            setattr(e, k, v(e) if callable(v) else v)
        return e

    return make


def renamed(new_name):
    return edit(name=new_name)


def write_variants(fixtures, out):
    small = os.path.join(fixtures, spec.SMALL)
    with open(small, "rb") as f:
        good = f.read()
    for name, blob in (("empty.pt", b""), ("garbage.pt", b"not a zip file at all " * 40),
                       ("truncated.pt", good[: len(good) // 2]),
                       ("truncated_tail.pt", good[:-10])):
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)

    v = lambda *args, **kw: variant(small, out, *args, **kw)  # noqa: E731
    v("rewritten.pt")  # sanity: the writer's output reads like the stock package
    v("zip64.pt", zip64=True)
    v("deflated.pt", edit(method=DEFLATED))  # torch only deflates TorchScript code
    v("crc_stored.pt", only(STORAGE, edit(crc_override=lambda e: zlib.crc32(e.data) ^ 1)))
    v("crc_deflated.pt",
      only(TEXT, edit(method=DEFLATED, crc_override=lambda e: zlib.crc32(e.data) ^ 1)))
    v("no_version.pt", lambda e: None if _rel(e) == ".data/version" else e)
    v("root_version.pt", only(".data/version", renamed("small/version")))
    v("bad_version.pt", only(".data/version", edit(data=b"abc")))
    v("version_99.pt", only(".data/version", edit(data=b"99")))
    v("version_0.pt", only(".data/version", edit(data=b"0")))
    v("no_storage.pt", lambda e: None if e.name.endswith(".storage") else e)
    v("dotdot.pt", only(MODULE, renamed("small/../evil.py")))
    v("absolute.pt", only(MODULE, renamed("small//etc/evil.py")))
    v("not_in_folder.pt", only(MODULE, renamed("other/mod.py")))
    v("no_folder.pt", lambda e: Entry(_rel(e).replace("/", "_"), e.data))
    # ZIP bombs and other lying sizes.
    v("bomb_small_declared.pt",  # inflates to 1000x what it declares
      only(TEXT, lambda e: Entry(e.name, e.data * 1000, DEFLATED,
                                 uncompressed_size_override=len(e.data))))
    v("bomb_large_declared.pt",
      only(TEXT, edit(method=DEFLATED, uncompressed_size_override=lambda e: len(e.data) + 100)))
    v("bomb_huge_declared.pt",
      only(TEXT, edit(method=DEFLATED, uncompressed_size_override=0xFFFFFFF0)))
    v("stored_size_lies.pt",
      only(STORAGE, edit(uncompressed_size_override=lambda e: len(e.data) + 8)))
    v("beyond_end.pt",
      only(STORAGE, edit(uncompressed_size_override=1 << 30, compressed_size_override=1 << 30)))
    v("corrupt_deflate.pt", only(TEXT, edit(method=DEFLATED, payload_override=b"\xff" * 20)))
    v("unsupported_method.pt",
      only(TEXT, edit(method=12, payload_override=lambda e: e.data)))
    # An unzipped package, as torch's DirectoryReader reads it.
    unz = os.path.join(out, "unzipped")
    shutil.rmtree(unz, ignore_errors=True)
    with zipfile.ZipFile(small) as z:
        z.extractall(unz)
    os.rename(os.path.join(unz, "small"), os.path.join(unz, "pkg"))


def write_expectations(fixtures, out):
    """<name>.records: record names in archive order, as PyTorchFileReader lists them;
    <name>.torch_py: the TorchScript code record (deflated by torch) of script.pt."""
    for name, path in (("small", os.path.join(fixtures, spec.SMALL)),
                       ("script", os.path.join(fixtures, spec.SCRIPT)),
                       ("zip64", os.path.join(out, "zip64.pt")),
                       ("deflated", os.path.join(out, "deflated.pt"))):
        reader = torch._C.PyTorchFileReader(path)
        with open(os.path.join(out, name + ".records"), "w") as f:
            f.write("".join(n + "\n" for n in reader.get_all_records()))
        with zipfile.ZipFile(path) as z:
            for i in z.infolist():
                if i.filename.endswith("/.data/ts_code/code/__torch__.py"):
                    with open(os.path.join(out, name + ".torch_py"), "wb") as f:
                        f.write(z.read(i))


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(f"usage: {argv[0]} FIXTURES_DIR [STAMP]")
    fixtures = argv[1]
    out = os.path.join(fixtures, ARCHIVE_DIR)
    os.makedirs(out, exist_ok=True)
    write_variants(fixtures, out)
    write_expectations(fixtures, out)
    if len(argv) == 3:
        with open(argv[2], "w") as f:
            f.write("ok\n")


if __name__ == "__main__":
    main(sys.argv)
