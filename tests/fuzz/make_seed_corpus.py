"""Writes the seed corpora of the fuzz targets (tests/fuzz/CMakeLists.txt runs it).

    make_seed_corpus.py --fixtures B-fuzz/fixtures --out B-fuzz/fuzz/corpus \
        --elf testlibs/libpyfleet_test_fake_interpreter.so /lib/x86_64-linux-gnu/libz.so.1

Everything comes from real files: the fixture packages the stock PackageExporter wrote
(tests/fixtures, plus their broken/ and archive/ variants), their deflated records and
pickles, and a few small real shared objects. One folder per target:
  package_archive_fuzzer, package_importer_fuzzer   whole packages (<= 64 KiB)
  record_inflate_fuzzer    4-byte LE declared size + raw deflate stream (see its .cpp)
  pickle_globals_fuzzer    every .pkl record, plus pickles of protocols 0-5
  elf_file_fuzzer, elf_edit_fuzzer   the --elf files, debug info stripped
"""
import argparse
import hashlib
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

MAX_PACKAGE = 64 * 1024
MAX_IMPORTER_PACKAGE = 48 * 1024


def write(folder: Path, name: str, data: bytes, seen: set):
    digest = hashlib.sha1(data).hexdigest()
    if digest in seen:
        return
    seen.add(digest)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:80]
    (folder / f"{safe}-{digest[:8]}").write_bytes(data)


def packages(fixtures: Path):
    for path in sorted(fixtures.rglob("*.pt")):
        if path.is_file():
            yield path.relative_to(fixtures).as_posix().replace("/", "_"), path.read_bytes()


def raw_deflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo, blob: bytes) -> bytes:
    # The local header's own name/extra lengths say where the data starts.
    off = info.header_offset
    name_len, extra_len = struct.unpack_from("<HH", blob, off + 26)
    start = off + 30 + name_len + extra_len
    return blob[start:start + info.compress_size]


def synthetic_streams():
    def deflate(data, level=6):
        c = zlib.compressobj(level, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()
    hello = b"def forward(self, x):\n    return x + 1\n" * 8
    yield "empty", 0, deflate(b"")
    yield "text", len(hello), deflate(hello)
    yield "stored_block", len(hello), deflate(hello, 0)
    yield "short_declared", len(hello) - 1, deflate(hello)
    yield "long_declared", len(hello) + 1, deflate(hello)
    yield "truncated", len(hello), deflate(hello)[:-3]
    yield "bomb", 64 * 1024, deflate(b"\0" * 64 * 1024, 9)
    yield "trailing_garbage", len(hello), deflate(hello) + b"garbage"


def synthetic_pickles():
    obj = {"od": OrderedDict(a=1), "set": {1, 2}, "bytes": b"x", "cplx": 1j, "list": [1, "s"]}
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        yield f"proto{proto}", pickle.dumps(obj, protocol=proto)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixtures", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--elf", nargs="*", default=[])
    args = ap.parse_args()

    targets = ["package_archive_fuzzer", "package_importer_fuzzer", "record_inflate_fuzzer",
               "pickle_globals_fuzzer", "elf_file_fuzzer", "elf_edit_fuzzer"]
    dirs = {}
    for t in targets:
        d = args.out / t
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        dirs[t] = (d, set())

    def put(target, name, data):
        write(dirs[target][0], name, data, dirs[target][1])

    for name, blob in packages(args.fixtures):
        if len(blob) <= MAX_PACKAGE:
            put("package_archive_fuzzer", name, blob)
        if len(blob) <= MAX_IMPORTER_PACKAGE:
            put("package_importer_fuzzer", name, blob)
        try:
            zf = zipfile.ZipFile(__import__("io").BytesIO(blob))
            infos = zf.infolist()
        except Exception:
            continue  # a broken fixture: seed for the archive targets only
        for info in infos:
            try:
                if info.compress_type == zipfile.ZIP_DEFLATED:
                    raw = raw_deflate(zf, info, blob)
                    put("record_inflate_fuzzer", f"{name}_{info.filename}",
                        struct.pack("<I", info.file_size) + raw)
                if info.filename.endswith(".pkl"):
                    put("pickle_globals_fuzzer", f"{name}_{info.filename}", zf.read(info))
            except Exception:
                continue
    for name, declared, raw in synthetic_streams():
        put("record_inflate_fuzzer", name, struct.pack("<I", declared) + raw)
    for name, data in synthetic_pickles():
        put("pickle_globals_fuzzer", name, data)

    strip = shutil.which("strip")
    for path in map(Path, args.elf):
        data = path.resolve().read_bytes()
        if strip:
            tmp = args.out / "stripped.tmp"
            tmp.write_bytes(data)
            subprocess.run([strip, "--strip-debug", str(tmp)], check=True)
            data = tmp.read_bytes()
            tmp.unlink()
        for t in ("elf_file_fuzzer", "elf_edit_fuzzer"):
            put(t, path.name, data)

    for t, (d, _) in dirs.items():
        n = len(list(d.iterdir()))
        if n == 0:
            sys.exit(f"make_seed_corpus: no seeds for {t}")
        print(f"{t}: {n} seeds")


if __name__ == "__main__":
    main()
