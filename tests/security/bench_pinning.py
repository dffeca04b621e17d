"""What integrity pinning costs: opening a package with pyfleet.PackageImporter(path)
against PackageImporter(path, sha256=...), with the file in the page cache (warm) and
evicted from it (cold), and the same followed by the first load_pickle (which, unpinned
or not, CRC-checks every storage it maps: Note [Lazy CRC verification]).

    cmake --build B --target pyfleet_bench_fixtures          # B/fixtures/resnet50.pt
    PYTHONPATH=B/python /usr/bin/python3 tests/security/bench_pinning.py B/fixtures/resnet50.pt

Cold runs evict the file's pages with posix_fadvise(POSIX_FADV_DONTNEED) before each
open (no root needed; pages that another process maps stay cached) and print how much
of the file was still resident, measured with mincore(2). Prints one line per case:
median and min of --repeats runs, in milliseconds.
"""
import argparse
import ctypes
import gc
import hashlib
import mmap
import os
import statistics
import time
import zipfile

import pyfleet

_libc = ctypes.CDLL(None, use_errno=True)


def resident_fraction(path):
    """Fraction of the file's pages in the page cache (mincore(2) on a fresh mapping)."""
    size = os.path.getsize(path)
    if size == 0:
        return 0.0
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    _libc.mmap.restype = ctypes.c_void_p
    _libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    _libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    _libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    fd = os.open(path, os.O_RDONLY)
    try:
        p = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if p is None or p == ctypes.c_void_p(-1).value:
            return float("nan")
        try:
            vec = (ctypes.c_ubyte * pages)()
            if _libc.mincore(ctypes.c_void_p(p), size, vec) != 0:
                return float("nan")
            return sum(b & 1 for b in vec) / pages
        finally:
            _libc.munmap(ctypes.c_void_p(p), size)
    finally:
        os.close(fd)


def evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 22):
            pass


def first_pickle(path):
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            parts = name.split("/")
            if name.endswith(".pkl") and ".data" not in parts and len(parts) >= 3:
                return "/".join(parts[1:-1]).replace("/", "."), parts[-1]
    raise SystemExit(f"{path}: no pickle to load")


def run(path, sha256, cold, load, repeats):
    times, resident = [], []
    pickle = first_pickle(path) if load else None
    for _ in range(repeats):
        if cold:
            evict(path)
            resident.append(resident_fraction(path))
        else:
            warm(path)
        t0 = time.perf_counter()
        imp = pyfleet.PackageImporter(path, sha256=sha256) if sha256 else pyfleet.PackageImporter(path)
        if load:
            imp.load_pickle(*pickle)
        times.append((time.perf_counter() - t0) * 1e3)
        del imp
        gc.collect()  # an importer is in reference cycles: its mapping must go before the next eviction
    return times, resident


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("package")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    path = os.path.abspath(args.package)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    size_mb = os.path.getsize(path) / 1e6
    print(f"{path}: {size_mb:.1f} MB, sha256 {digest}, {args.repeats} runs each, cpus {os.cpu_count()}")
    import torch  # noqa: F401  (imported once up front: not part of any timing)

    results = {}
    for load in (False, True):
        for cold in (False, True):
            for pinned in (False, True):
                times, resident = run(path, digest if pinned else None, cold, load, args.repeats)
                key = ("open+load_pickle" if load else "open", "cold" if cold else "warm",
                       "pinned" if pinned else "unpinned")
                results[key] = times
                extra = ""
                if resident:
                    extra = f"  (resident before: {100 * max(resident):.0f}% max)"
                print(f"{key[0]:>17} {key[1]} {key[2]:>8}: median {statistics.median(times):8.1f} ms, "
                      f"min {min(times):8.1f} ms{extra}")
    for load in ("open", "open+load_pickle"):
        for temp in ("warm", "cold"):
            cost = statistics.median(results[(load, temp, "pinned")]) - statistics.median(results[(load, temp, "unpinned")])
            print(f"pinning cost, {load}, {temp}: {cost:+.1f} ms (medians)")


if __name__ == "__main__":
    main()
