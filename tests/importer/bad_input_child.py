"""Runs the bad-input steps on broken archives in a child process and prints one JSON line each.

A crash (signal) in an importer must not take the test session down with it, so
test_bad_input.py runs this per importer and restarts it after a crash:

    /usr/bin/python3 bad_input_child.py {stock|pyfleet} FIXTURES_DIR CASE [CASE...]

For each case: {"case", "path", "steps": {step: {"ok", "type", "msg", "value"}}, "rss_growth_kb"}.
Steps run in order; after a failed constructor only "after" runs ("after" opens small.pt
afresh with the same importer class: the process must stay usable).
"""
import json
import os
import resource
import sys

import torch  # noqa: F401  (the steps below need it loaded before measuring memory)
import torch.package

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import fixture_spec as spec  # noqa: E402


def importer_class(impl):
    if impl == "stock":
        return torch.package.package_importer.PackageImporter
    import pyfleet

    return pyfleet.PackageImporter


def run_step(fn):
    try:
        value = fn()
        return {"ok": True, "value": value}
    except Exception as e:  # noqa: BLE001 - every failure is reported
        return {"ok": False, "type": type(e).__name__, "module": type(e).__module__,
                "mro": [c.__name__ for c in type(e).__mro__], "msg": str(e)}


def tensor_summary(d):
    return {k: [str(v.dtype), list(v.shape), float(v.double().sum())] for k, v in sorted(d.items())}


def run_case(cls, fixtures, case):
    path = os.path.join(fixtures, spec.BROKEN_DIR, case + ".pt")
    small = os.path.join(fixtures, spec.SMALL)
    steps = {}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    holder = {}

    def ctor():
        holder["imp"] = cls(path)
        return True

    steps["ctor"] = run_step(ctor)
    if steps["ctor"]["ok"]:
        imp = holder["imp"]
        steps["records"] = run_step(lambda: str(imp.file_structure()))
        steps["load_binary_text"] = run_step(lambda: imp.load_binary("pf_demo.data", "hello.txt").hex())
        if case.startswith("bomb_"):  # only these archives have the record
            steps["load_binary_bomb"] = run_step(lambda: len(imp.load_binary("pf_demo.data", "bomb.bin")))
        steps["load_pickle"] = run_step(lambda: tensor_summary(imp.load_pickle("pf_demo.data", "tensors.pkl")))
        steps["import"] = run_step(lambda: imp.import_module("pf_demo.util.maths").cube(3))
        holder.clear()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    steps["after"] = run_step(lambda: cls(small).load_text("pf_demo.data", "hello.txt") == spec.HELLO_TEXT)
    return {"case": case, "path": path, "steps": steps, "rss_growth_kb": after - before}


def main(argv):
    impl, fixtures, cases = argv[1], argv[2], argv[3:]
    try:
        cls = importer_class(impl)
        # Warm up so the first case's memory figure doesn't include one-time imports.
        cls(os.path.join(fixtures, spec.SMALL)).load_pickle("pf_demo.data", "tensors.pkl")
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"fatal": f"{type(e).__name__}: {e}"}), flush=True)
        return 3
    for case in cases:
        print(json.dumps(run_case(cls, fixtures, case)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
