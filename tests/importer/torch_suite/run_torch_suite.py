"""Runs the platform torch's test/package suite (1.13.1 or 2.6.0) twice, stock and with pyfleet.PackageImporter
swapped in (pyfleet_swap.py), and compares the outcomes test by test.

    /usr/bin/python3 run_torch_suite.py --torch-test-dir /path/pytorch-X.Y.Z/test --out-dir OUT

Prints passed/failed/error/skipped for both side by side, writes OUT/stock.xml,
OUT/pyfleet.xml (JUnit) and OUT/pyfleet_only_failures.txt, and exits 1 if a test that
passes with the stock importer does not pass with pyfleet, unless ALLOWED below lists it.
pyfleet itself is found on PYTHONPATH (ctest: <build>/python). If Debian lacks
`expecttest` (it does in 12), shims/expecttest.py stands in for it; this is printed.
"""
import argparse
import collections
import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))

# Tests allowed to fail ONLY with pyfleet because they are not importer-facing: each
# entry says why. Keep it short; every other stock-pass/pyfleet-fail is a failure.
ALLOWED = {
    # (none yet: every test in torch's test/package that can notice the swap goes through
    # the importer's public behaviour)
}


def parse_junit(path):
    """{test id: (outcome, message)} from a JUnit XML file."""
    out = {}
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        tid = f"{case.get('classname')}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = (child.get("message") or child.text or "").strip().splitlines()[0:1]
                message = message[0][:300] if message else ""
                break
        out[tid] = (outcome, message)
    return out


def run_suite(mode, test_dir, out_dir, extra_paths, timeout):
    xml = os.path.join(out_dir, f"{mode}.xml")
    if os.path.exists(xml):
        os.remove(xml)
    env = dict(os.environ)
    # Absolute: the suite runs with torch's test/ as its working directory.
    inherited = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(extra_paths + inherited)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [sys.executable, "-m", "pytest", "package", "-q", "-p", "no:cacheprovider",
           f"--junitxml={xml}", "-o", "junit_family=xunit1"]
    if mode == "pyfleet":
        cmd += ["-p", "pyfleet_swap"]
    proc = subprocess.run(cmd, cwd=test_dir, env=env, capture_output=True, text=True, timeout=timeout)
    with open(os.path.join(out_dir, f"{mode}.log"), "w") as f:
        f.write(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if not os.path.exists(xml):
        return None, proc
    return parse_junit(xml), proc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torch-test-dir", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--timeout", type=int, default=900)
    args = ap.parse_args()

    package_dir = os.path.join(args.torch_test_dir, "package")
    if not os.path.isfile(os.path.join(package_dir, "test_importer.py")):
        print(f"run_torch_suite: {package_dir} is not torch's test/package "
              "(set PYFLEET_TORCH_TEST_DIR; CI fetches it with `apt-get source pytorch`)")
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    extra = [HERE]
    if importlib.util.find_spec("expecttest") is None:
        extra.append(os.path.join(HERE, "shims"))
        print("run_torch_suite: python3 has no `expecttest`; using shims/expecttest.py")

    results = {}
    for mode in ("stock", "pyfleet"):
        res, proc = run_suite(mode, args.torch_test_dir, args.out_dir, extra, args.timeout)
        if res is None or not res:
            tail = (proc.stdout + proc.stderr)[-3000:]
            print(f"run_torch_suite: the {mode} run produced no results (exit {proc.returncode}):\n{tail}")
            return 1
        if mode == "pyfleet" and "pyfleet_swap: swapped in pyfleet.PackageImporter" not in proc.stderr:
            print("run_torch_suite: the pyfleet run did not report the swap (pyfleet_swap.py not loaded?)")
            return 1
        results[mode] = res

    stock, pyf = results["stock"], results["pyfleet"]
    counts = {m: collections.Counter(o for o, _ in r.values()) for m, r in results.items()}
    import torch
    print(f"torch {torch.__version__} test/package ({args.torch_test_dir})")
    print(f"{'':12}{'stock':>8}{'pyfleet':>9}")
    for outcome in ("passed", "failed", "error", "skipped"):
        print(f"{outcome:12}{counts['stock'][outcome]:>8}{counts['pyfleet'][outcome]:>9}")
    print(f"{'total':12}{len(stock):>8}{len(pyf):>9}")
    if counts["stock"]["passed"] == 0:
        # A suite that did not run (every test a collection error) compares nothing.
        print(f"run_torch_suite: no test passed with the stock importer: the suite did not run "
              f"(see {os.path.join(args.out_dir, 'stock.log')})")
        return 1

    regressions, allowed = [], []
    for tid, (outcome, _) in sorted(stock.items()):
        if outcome != "passed":
            continue
        p_outcome, p_msg = pyf.get(tid, ("missing", "not run with pyfleet (collection error?)"))
        if p_outcome in ("passed",):
            continue
        if p_outcome == "skipped":
            p_outcome = "skipped-only-with-pyfleet"
        (allowed if tid in ALLOWED else regressions).append((tid, p_outcome, p_msg))
    report = os.path.join(args.out_dir, "pyfleet_only_failures.txt")
    with open(report, "w") as f:
        for tid, outcome, msg in regressions:
            f.write(f"{tid}\t{outcome}\t{msg}\n")
        for tid, outcome, msg in allowed:
            f.write(f"{tid}\t{outcome} (allowed: {ALLOWED[tid]})\t{msg}\n")
    print(f"pass with stock, not with pyfleet: {len(regressions)} (+{len(allowed)} allowed) -> {report}")
    for tid, outcome, msg in regressions[:50]:
        print(f"  {outcome:8} {tid}: {msg}")
    stale = sorted(set(ALLOWED) - {t for t, _, _ in allowed})
    if stale:
        print(f"allow-list entries that no longer fail (remove them): {stale}")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
