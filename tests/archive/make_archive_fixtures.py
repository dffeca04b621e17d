"""Writes the packages tests/archive reads, into the folder given as argv[1].

Good packages come from the stock torch.package.PackageExporter (torch 1.13.1); bad
ones are rewritten from them with a small ZIP writer below that lays records out the
way torch does (64-byte aligned data, "FB" padding extra field) but lets a test lie in
any header field. Run with Debian's /usr/bin/python3.
"""
import io
import os
import shutil
import struct
import sys
import zipfile
import zlib

import torch
from torch.package import PackageExporter


class Scripted(torch.nn.Module):
    def forward(self, x):
        return x * 2 + 1


def write_good(out):
    # torch gates TorchScript in packages behind this flag (its own tests clear it too).
    torch.package.package_exporter._gate_torchscript_serialization = False
    with PackageExporter(os.path.join(out, "small.pt")) as e:
        e.save_text("res", "hello.txt", "hello world\n")
        e.save_pickle("res", "data.pkl", {"w": torch.arange(16, dtype=torch.float32),
                                          "b": torch.ones(3, dtype=torch.int64)})
        e.save_source_string("mod", "VALUE = 42\n")
    with PackageExporter(os.path.join(out, "script.pt")) as e:
        e.save_pickle("m", "scripted.pkl", torch.jit.script(Scripted()))


class Rec:
    def __init__(self, name, data, method=0, crc=None, usize=None, csize=None, payload=None):
        self.name, self.data, self.method = name, data, method
        if method == 8:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            self.payload = c.compress(data) + c.flush()
        else:
            self.payload = data
        if payload is not None:
            self.payload = payload
        self.crc = zlib.crc32(data) if crc is None else crc
        self.usize = len(data) if usize is None else usize
        self.csize = len(self.payload) if csize is None else csize


def write_zip(path, recs, zip64=False):
    """torch-like layout; zip64=True uses ZIP64 fields for every size and offset."""
    buf = io.BytesIO()
    central = []
    for r in recs:
        off = buf.tell()
        name = r.name.encode()
        extra = b""
        if zip64:
            extra = struct.pack("<HHQQ", 1, 16, r.usize, r.csize)
        # pad the data start to 64 bytes with an "FB" extra field, as torch does
        start = off + 30 + len(name) + len(extra) + 4
        pad = (-start) % 64
        extra += b"FB" + struct.pack("<H", pad) + b"Z" * pad
        lsz = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (r.csize & 0xFFFFFFFF, r.usize & 0xFFFFFFFF)
        buf.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, 0, r.method, 0,
                              0x21, r.crc, lsz[0], lsz[1], len(name), len(extra)))
        buf.write(name + extra)
        buf.write(r.payload)
        central.append((r, off))
    cd_off = buf.tell()
    for r, off in central:
        name = r.name.encode()
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, r.usize, r.csize, off)
            fields = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        else:
            extra = b""
            fields = (r.csize & 0xFFFFFFFF, r.usize & 0xFFFFFFFF, off)
        buf.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45 if zip64 else 20, 0,
                              r.method, 0, 0x21, r.crc, fields[0], fields[1], len(name),
                              len(extra), 0, 0, 0, 0, fields[2]))
        buf.write(name + extra)
    cd_size = buf.tell() - cd_off
    n = len(recs)
    if zip64:
        end64 = buf.tell()
        buf.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_off))
        buf.write(struct.pack("<IIQI", 0x07064B50, 0, end64, 1))
        buf.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                              0xFFFFFFFF, 0))
    else:
        buf.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_off, 0))
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def records_of(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def variant(out, name, base, change=lambda n, d: Rec(n, d), zip64=False):
    recs = []
    for n, d in records_of(os.path.join(out, base)):
        r = change(n, d)
        if r is not None:
            recs.append(r)
    write_zip(os.path.join(out, name), recs, zip64=zip64)


def write_bad(out):
    good = open(os.path.join(out, "small.pt"), "rb").read()
    open(os.path.join(out, "empty.pt"), "wb").close()
    open(os.path.join(out, "garbage.pt"), "wb").write(b"not a zip file at all " * 40)
    open(os.path.join(out, "truncated.pt"), "wb").write(good[: len(good) // 2])
    open(os.path.join(out, "truncated_tail.pt"), "wb").write(good[:-10])

    def only(suffix, make):
        return lambda n, d: make(n, d) if n.endswith(suffix) else Rec(n, d)

    variant(out, "rewritten.pt", "small.pt")  # sanity: our writer's output is valid
    variant(out, "zip64.pt", "small.pt", zip64=True)
    # deflate every record (torch only deflates TorchScript code)
    variant(out, "deflated.pt", "small.pt", lambda n, d: Rec(n, d, method=8))
    variant(out, "crc_stored.pt", "small.pt",
            only(".data/0.storage", lambda n, d: Rec(n, d, crc=zlib.crc32(d) ^ 1)))
    variant(out, "crc_deflated.pt", "small.pt",
            only("res/hello.txt", lambda n, d: Rec(n, d, method=8, crc=zlib.crc32(d) ^ 1)))
    variant(out, "no_version.pt", "small.pt", lambda n, d: None if n.endswith(".data/version") else Rec(n, d))
    variant(out, "root_version.pt", "small.pt",
            lambda n, d: Rec("small/version", d) if n.endswith(".data/version") else Rec(n, d))
    variant(out, "bad_version.pt", "small.pt", only(".data/version", lambda n, d: Rec(n, b"abc")))
    variant(out, "version_99.pt", "small.pt", only(".data/version", lambda n, d: Rec(n, b"99")))
    variant(out, "version_0.pt", "small.pt", only(".data/version", lambda n, d: Rec(n, b"0")))
    variant(out, "no_storage.pt", "small.pt", lambda n, d: None if n.endswith(".storage") else Rec(n, d))
    variant(out, "dotdot.pt", "small.pt", only("mod.py", lambda n, d: Rec("small/../evil.py", d)))
    variant(out, "absolute.pt", "small.pt", only("mod.py", lambda n, d: Rec("small//etc/evil.py", d)))
    variant(out, "not_in_folder.pt", "small.pt", only("mod.py", lambda n, d: Rec("other/mod.py", d)))
    variant(out, "no_folder.pt", "small.pt",
            lambda n, d: Rec(n.split("/", 1)[1].replace("/", "_"), d))
    # ZIP bombs and other lying sizes
    variant(out, "bomb_small_declared.pt", "small.pt",
            only("res/hello.txt", lambda n, d: Rec(n, d * 1000, method=8, usize=len(d))))
    variant(out, "bomb_large_declared.pt", "small.pt",
            only("res/hello.txt", lambda n, d: Rec(n, d, method=8, usize=len(d) + 100)))
    variant(out, "bomb_huge_declared.pt", "small.pt",
            only("res/hello.txt", lambda n, d: Rec(n, d, method=8, usize=0xFFFFFFF0)))
    variant(out, "stored_size_lies.pt", "small.pt",
            only(".data/0.storage", lambda n, d: Rec(n, d, usize=len(d) + 8)))
    variant(out, "beyond_end.pt", "small.pt",
            only(".data/0.storage", lambda n, d: Rec(n, d, usize=1 << 30, csize=1 << 30)))
    variant(out, "corrupt_deflate.pt", "small.pt",
            only("res/hello.txt", lambda n, d: Rec(n, d, method=8, payload=b"\xff" * 20)))
    variant(out, "unsupported_method.pt", "small.pt",
            only("res/hello.txt", lambda n, d: Rec(n, d, method=12, payload=d)))
    # an unzipped package, as torch's DirectoryReader reads it
    unz = os.path.join(out, "unzipped")
    shutil.rmtree(unz, ignore_errors=True)
    with zipfile.ZipFile(os.path.join(out, "small.pt")) as z:
        z.extractall(unz)
    os.rename(os.path.join(unz, "small"), os.path.join(unz, "pkg"))


def write_expectations(out):
    """<pkg>.records: record names in archive order, as PyTorchFileReader lists them."""
    for base in ("small", "script", "zip64", "deflated"):
        reader = torch._C.PyTorchFileReader(os.path.join(out, base + ".pt"))
        with open(os.path.join(out, base + ".records"), "w") as f:
            f.write("".join(n + "\n" for n in reader.get_all_records()))
        with zipfile.ZipFile(os.path.join(out, base + ".pt")) as z:
            for i in z.infolist():
                if i.filename.endswith("ts_code/code/__torch__.py"):
                    open(os.path.join(out, base + ".torch_py"), "wb").write(z.read(i))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write_good(out)
    write_bad(out)
    write_expectations(out)
    if len(sys.argv) > 2:
        open(sys.argv[2], "w").write("ok\n")


if __name__ == "__main__":
    main()
