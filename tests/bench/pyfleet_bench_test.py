"""pyfleet-bench: a short real run writes complete JSON and CSV; usage mistakes exit
non-zero with a message that names them; the plot script turns a JSON into a PNG.
Nothing here is timed: figures are only checked to be present and sane.

    python3 pyfleet_bench_test.py --bench B/bin/pyfleet-bench --package B/examples/mlp.pt \
        --plot-script benchmarks/bench/plot_bench.py
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import unittest

ARGS = None
FIELDS = ["package", "strategy", "threads", "items_per_s", "p50_ms", "p95_ms", "p99_ms", "cpu_util",
          "rss_mb", "pss_mb"]
MACHINE_FIELDS = ["cores", "cpu_model", "kernel", "torch_version", "python_version", "date"]


def run(*args, timeout=540):
    return subprocess.run([ARGS.bench, *args], capture_output=True, text=True, timeout=timeout)


class PyfleetBenchRunTest(unittest.TestCase):
    """One short run of two strategies, shared by the tests of its outputs."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.json_path = os.path.join(cls.tmp.name, "out.json")
        cls.csv_path = os.path.join(cls.tmp.name, "out.csv")
        cls.result = run(ARGS.package, "--seconds", "1", "--threads", "1", "--rounds", "1", "--warmup", "0.2",
                         "--strategies", "multi_python,python_threads", "--json", cls.json_path,
                         "--csv", cls.csv_path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_exits_zero_and_prints_table(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        self.assertIn("items/s", self.result.stdout)
        self.assertIn("intra-op threads 1", self.result.stdout)
        # stdout is a pipe here: no progress line (it goes to a terminal only).
        self.assertNotIn("\r", self.result.stderr + self.result.stdout)

    def test_json_has_machine_and_every_field(self):
        with open(self.json_path) as f:
            data = json.load(f)
        for field in MACHINE_FIELDS:
            self.assertIn(field, data["machine"])
        self.assertGreaterEqual(data["machine"]["cores"], 1)
        self.assertEqual(data["machine"]["python_version"].split(".")[:2], [str(v) for v in sys.version_info[:2]])
        rows = data["results"]
        self.assertEqual(sorted(r["strategy"] for r in rows), ["multi_python", "python_threads"])
        for r in rows:
            self.assertEqual(sorted(r), sorted(FIELDS))
            self.assertEqual(r["package"], "mlp")
            self.assertEqual(r["threads"], 1)
            self.assertGreater(r["items_per_s"], 0)
            self.assertTrue(0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"], r)
            self.assertTrue(0 < r["cpu_util"] <= 1.05, r)
            self.assertTrue(0 < r["pss_mb"] <= r["rss_mb"] * 1.01, r)

    def test_csv_has_the_same_rows(self):
        with open(self.csv_path, newline="") as f:
            reader = csv.DictReader(f)
            self.assertEqual(reader.fieldnames, FIELDS)
            rows = list(reader)
        with open(self.json_path) as f:
            data = json.load(f)
        self.assertEqual(len(rows), len(data["results"]))
        for row, ref in zip(rows, data["results"]):
            self.assertEqual(row["strategy"], ref["strategy"])
            self.assertAlmostEqual(float(row["items_per_s"]), ref["items_per_s"], places=1)
            self.assertAlmostEqual(float(row["pss_mb"]), ref["pss_mb"], places=0)


class PyfleetBenchUsageTest(unittest.TestCase):
    def test_missing_package_is_an_error(self):
        r = run("/nonexistent/model.pt", "--seconds", "1")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("package not found: /nonexistent/model.pt", r.stderr)

    def test_unknown_strategy_is_an_error(self):
        r = run(ARGS.package, "--strategies", "multi_python,no_such_strategy")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unknown strategy 'no_such_strategy'", r.stderr)
        self.assertIn("python_processes", r.stderr)  # the known ones are listed

    def test_no_package_is_an_error(self):
        r = run()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no PACKAGE given", r.stderr)

    def test_help_lists_flags(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for flag in ["--threads", "--seconds", "--strategies", "--json", "--csv", "--plot"]:
            self.assertIn(flag, r.stdout)
        self.assertNotIn("--twin", r.stdout)  # the worker's flags are not the tool's


class PlotScriptTest(unittest.TestCase):
    def test_writes_png_from_json(self):
        rows = []
        for package in ["mlp", "resnet18"]:
            for strategy in ["multi_python", "one_python", "torchscript", "python_threads", "python_processes"]:
                for t in [1, 2]:
                    rows.append(dict(package=package, strategy=strategy, threads=t, items_per_s=100.0 * t,
                                     p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, cpu_util=0.5, rss_mb=300.0 * t,
                                     pss_mb=200.0 * t))
        data = {"machine": dict(cores=2, cpu_model="test", kernel="Linux", torch_version="1.13",
                                python_version="3.11.2", date="2024-01-01T00:00:00Z"),
                "results": rows}
        with tempfile.TemporaryDirectory() as tmp:
            src, out = os.path.join(tmp, "r.json"), os.path.join(tmp, "r.png")
            with open(src, "w") as f:
                json.dump(data, f)
            r = subprocess.run([sys.executable, ARGS.plot_script, src, out], capture_output=True, text=True,
                               timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            self.assertGreater(os.path.getsize(out), 10000)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--plot-script", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
