"""load_pickle and import speed of pyfleet.PackageImporter vs torch 1.13's stock importer.

    PYTHONPATH=B/python /usr/bin/python3 benchmarks/importer/bench_load_pickle.py \
        [--fixtures-dir B/fixtures] [--repeat 7] [--json out.json] [--impls stock,pyfleet]

Builds the packages if they are missing (tests/fixtures/gen_bench_packages.py: a torchvision
ResNet-50 with random weights, ~100 MB of storages, and a package of 300 modules), then:

  * time, in ONE process, alternating the importers each round (the order flips every
    round): constructor, load_pickle("model", "model.pkl") with that fresh importer, the
    same load_pickle again on the same importer (one-time per-importer work such as CRC
    checks is excluded there), and import_module("pf_many") (all 300 modules) with a fresh
    importer. Best and median of
    --repeat rounds after one warm-up round each. Both results are checked equal.
  * peak memory, in one fresh subprocess per importer: /proc/self/status before and after
    one load_pickle: VmHWM (peak RSS; reset through /proc/self/clear_refs first) minus the
    baseline VmRSS, plus the RssAnon and RssFile growth. Storage bytes copied into the
    process show up as RssAnon; pages of a mapped archive show up as RssFile.
  * aliasing: how many storage bytes of the loaded model lie inside a mapping of the
    archive file (/proc/self/maps) = storage bytes NOT copied.
Prints one table plus pyfleet/stock ratios. Target: load_pickle >= 3x faster, 100% aliased.
"""
import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))

from proc_maps import mapped_ranges  # noqa: E402  (tests/fixtures, put on the path above)


def importer_class(name):
    if name == "stock":
        from torch.package import PackageImporter

        return PackageImporter
    import pyfleet

    return pyfleet.PackageImporter


def proc_status():
    """{field: kB} for the memory lines of /proc/self/status."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(rest.split()[0])
    return out


def storage_alias_stats(model, path):
    """(bytes aliased into the archive mapping, total storage bytes) of a module's tensors."""
    ranges = mapped_ranges(path)
    seen, aliased, total = set(), 0, 0
    for t in list(model.state_dict().values()):
        st = t.storage()
        ptr, nbytes = st.data_ptr(), st.nbytes()
        if ptr in seen or nbytes == 0:
            continue
        seen.add(ptr)
        total += nbytes
        if any(lo <= ptr and ptr + nbytes <= hi for lo, hi in ranges):
            aliased += nbytes
    return aliased, total


def child_memory(impl, package):
    """Runs in a subprocess: memory growth of one load_pickle, as JSON on stdout."""
    import torch  # noqa: F401
    import torchvision  # noqa: F401  (extern: imported by the first load otherwise)

    cls = importer_class(impl)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM to the current RSS
        f.write("5")
    before = proc_status()
    imp = cls(package)
    model = imp.load_pickle("model", "model.pkl")
    after = proc_status()
    aliased, total = storage_alias_stats(model, package)
    print(json.dumps({
        "peak_kb": after["VmHWM"] - before["VmRSS"],
        "rss_kb": after["VmRSS"] - before["VmRSS"],
        "anon_kb": after["RssAnon"] - before["RssAnon"],
        "file_kb": after["RssFile"] - before["RssFile"],
        "aliased": aliased, "storage_bytes": total,
    }))


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def check_same_model(a, b):
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb), "state_dict keys differ"
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{k} differs between importers"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixtures-dir", default=os.environ.get("PYFLEET_FIXTURES_DIR", os.path.join(REPO, "B", "fixtures")))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--impls", default="stock,pyfleet")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child-memory", nargs=2, metavar=("IMPL", "PACKAGE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_memory:
        child_memory(*args.child_memory)
        return 0

    import gen_bench_packages

    paths = gen_bench_packages.ensure(args.fixtures_dir)
    resnet, many = paths["resnet50"], paths["many_modules"]
    impls = args.impls.split(",")

    import torch
    import torchvision  # noqa: F401

    classes = {name: importer_class(name) for name in impls}
    keys = ("ctor", "load_pickle", "load_again", "import_many")
    times = {name: {k: [] for k in keys} for name in impls}
    models = {}
    for rnd in range(args.repeat + 1):  # round 0 is the warm-up
        order = impls if rnd % 2 == 0 else list(reversed(impls))
        for name in order:
            cls = classes[name]
            gc.collect()
            t_ctor, imp = timed(lambda: cls(resnet))
            t_load, model = timed(lambda: imp.load_pickle("model", "model.pkl"))
            del model
            gc.collect()
            t_again, model = timed(lambda: imp.load_pickle("model", "model.pkl"))
            gc.collect()
            imp_many = cls(many)
            t_many, mod = timed(lambda: imp_many.import_module("pf_many"))
            assert mod.COUNT == 300
            if rnd:
                times[name]["ctor"].append(t_ctor)
                times[name]["load_pickle"].append(t_load)
                times[name]["load_again"].append(t_again)
                times[name]["import_many"].append(t_many)
            models[name] = (imp, model)
            del imp_many, mod
    if len(impls) == 2:
        check_same_model(models[impls[0]][1], models[impls[1]][1])

    memory = {}
    for name in impls:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child-memory", name, resnet],
                              capture_output=True, text=True, env=os.environ)
        if proc.returncode != 0:
            raise RuntimeError(f"memory child for {name} failed:\n{proc.stderr[-2000:]}")
        memory[name] = json.loads(proc.stdout.strip().splitlines()[-1])

    results = {"torch_threads": torch.get_num_threads(), "repeat": args.repeat,
               "resnet50_bytes": os.path.getsize(resnet), "impls": {}}
    for name in impls:
        aliased, total = storage_alias_stats(models[name][1], resnet)
        r = {k: {"best_s": min(v), "median_s": statistics.median(v)} for k, v in times[name].items()}
        r["memory"] = memory[name]
        r["aliased_bytes"], r["storage_bytes"] = aliased, total
        results["impls"][name] = r

    print(f"ResNet-50 package {results['resnet50_bytes'] / 1e6:.1f} MB, {args.repeat} rounds "
          f"(+1 warm-up), alternating, torch threads {results['torch_threads']}")
    header = f"{'':46}" + "".join(f"{n:>18}" for n in impls)
    print(header)

    def row(label, fn):
        print(f"{label:46}" + "".join(f"{fn(results['impls'][n]):>18}" for n in impls))

    for key, label in (("ctor", "open (ctor)"), ("load_pickle", "load_pickle, fresh importer"),
                       ("load_again", "load_pickle, same importer"),
                       ("import_many", "import 301 modules")):
        row(f"{label} best/median ms", lambda r, k=key: f"{r[k]['best_s'] * 1e3:.1f}/{r[k]['median_s'] * 1e3:.1f}")
    row("peak RSS growth MB (VmHWM)", lambda r: f"{r['memory']['peak_kb'] / 1024:.1f}")
    row("RssAnon growth MB", lambda r: f"{r['memory']['anon_kb'] / 1024:.1f}")
    row("RssFile growth MB", lambda r: f"{r['memory']['file_kb'] / 1024:.1f}")
    row("storage bytes aliasing archive", lambda r: f"{100.0 * r['aliased_bytes'] / max(1, r['storage_bytes']):.1f}%")
    if "stock" in impls and "pyfleet" in impls:
        s, p = results["impls"]["stock"], results["impls"]["pyfleet"]
        ratios = {k: s[k]["best_s"] / p[k]["best_s"] for k in keys}
        results["speedup_stock_over_pyfleet"] = ratios
        print("speed-up (stock best / pyfleet best): " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
        target = ratios["load_pickle"] >= 3.0 and p["aliased_bytes"] == p["storage_bytes"]
        print(f"target (load_pickle >= 3x, no storage bytes copied): {'MET' if target else 'NOT MET'}")
    print("memory: one fresh subprocess per importer; VmHWM reset via /proc/self/clear_refs, "
          "growth = after - before around ctor + load_pickle")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
