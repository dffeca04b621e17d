"""The serving benchmark: pyfleet-serve beside a threaded Python HTTP server, same machine,
same run.

    /usr/bin/python3 benchmarks/serve/run_serve_bench.py --build B
    /usr/bin/python3 benchmarks/serve/run_serve_bench.py --build B --seconds 5 --models gil_bound

For each model (the GIL-bound and ResNet-18 example packages, B/examples) and each
concurrency (1, 2, 8, 32): throughput and p50/p99 latency of
  * pyfleet-serve over REST (JSON)        load: wrk (Debian), keep-alive connections
  * pyfleet-serve over gRPC (raw)         load: pyfleet-serve-load (Debian has no gRPC
                                          load generator; answers not checked here)
  * python_server.py over REST (JSON)     load: wrk; http.server's ThreadingHTTPServer, the
                                          stock torch.package importer, one GIL; HTTP/1.1
                                          keep-alive and TCP_NODELAY (a tuned baseline)
  * python_server.py --stock-http         the same with http.server's own defaults
                                          (HTTP/1.0: a connection per request)
On a shared machine, --repeat N measures each point N times (the servers alternating)
and shows the median round; `nice -n -10` keeps other work from skewing one server.
then what dynamic batching gains on ResNet-18 at concurrency 8 (--batch). pyfleet-serve
runs --interpreters (default 2) interpreters; every server uses 1 torch intra-op thread.
Prints the tables and how the GIL-bound model meets the targets (concurrency 8: >= 3x the
Python server's throughput with a lower p99; concurrency 1: no slower) against both
Python baselines. Nothing here is a test: figures depend on the machine and on what else
runs on it (the load generators share its cores).
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


class Server:
    """A server process that prints "...HTTP on http://HOST:PORT" (and gRPC) then "ready"."""

    def __init__(self, name, args):
        self.name = name
        self.lines = []
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(300):
            self.stop()
            raise RuntimeError("%s did not get ready:\n%s" % (name, "\n".join(self.lines)))
        text = "\n".join(self.lines)
        if "NOT ready" in text or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("%s is not ready:\n%s" % (name, text))
        self.http_port = int(re.search(r"HTTP on http://[\d.]+:(\d+)", text).group(1))
        grpc = re.search(r"gRPC on [\d.]+:(\d+)", text)
        self.grpc_port = int(grpc.group(1)) if grpc else None

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if re.search(r": (NOT )?ready", line):
                self.ready.set()
        self.ready.set()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def write_inputs(model, path, tmp):
    """The request body (JSON) and a pyfleet-serve-load cases file for `model`'s example
    shapes, random data with a fixed seed."""
    from torch.package import PackageImporter

    example = PackageImporter(path).load_pickle("model", "example.pkl")
    g = torch.Generator().manual_seed(7)
    names = ["x"] + ["input__%d" % i for i in range(1, len(example))]
    inputs = [{"name": n, "shape": list(t.shape), "datatype": "FP32",
               "data": torch.randn(*t.shape, generator=g).flatten().tolist()} for n, t in zip(names, example)]
    body = os.path.join(tmp, model + ".json")
    with open(body, "w") as f:
        json.dump({"inputs": inputs}, f)
    cases = os.path.join(tmp, model + ".cases.json")
    with open(cases, "w") as f:
        json.dump([{"inputs": inputs, "outputs": []}], f)
    script = os.path.join(tmp, model + ".lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                'local f = io.open(%s, "rb")\nwrk.body = f:read("*all")\nf:close()\n' % json.dumps(body))
    return script, cases


def to_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(url, script, concurrency, seconds):
    out = subprocess.run(["wrk", "-t", str(min(2, concurrency)), "-c", str(concurrency), "-d", "%ds" % seconds,
                          "--timeout", "60s", "--latency", "-s", script, url],
                         capture_output=True, text=True, timeout=seconds + 120)
    text = out.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    requests = re.search(r"(\d+) requests in", text)
    if not (rps and p50 and p99 and requests):
        raise RuntimeError("could not read wrk's output:\n" + text + out.stderr)
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return {"throughput": float(rps.group(1)), "p50_ms": to_ms(p50.group(1)), "p99_ms": to_ms(p99.group(1)),
            "requests": int(requests.group(1)), "errors": errors}


def run_grpc(load, target, model, cases, concurrency, seconds, warmup):
    out = subprocess.run([load, "--target", target, "--protocol", "grpc", "--model", model, "--cases", cases,
                          "--seconds", str(seconds), "--warmup", str(warmup), "--concurrency", str(concurrency),
                          "--check=false"], capture_output=True, text=True, timeout=seconds + warmup + 120)
    summary = json.loads(out.stdout)
    return {"throughput": summary["throughput"], "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"],
            "requests": summary["requests"], "errors": summary["errors"] + summary["mismatches"]}


def fmt(r):
    return "%10.1f %9.2f %9.2f %6d" % (r["throughput"], r["p50_ms"], r["p99_ms"], r["errors"])


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="B", help="the build folder (bin/, examples/)")
    parser.add_argument("--models", default="gil_bound,resnet18")
    parser.add_argument("--concurrency", default="1,2,8,32")
    parser.add_argument("--seconds", type=int, default=10, help="per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each measurement")
    parser.add_argument("--interpreters", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds per point, the servers alternating; the median round is shown")
    parser.add_argument("--batch", default="4:2000,8:2000",
                        help="MAX_BATCH:MAX_DELAY_US configs for ResNet-18 at concurrency 8 ('' to skip)")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("run_serve_bench: wrk is missing (apt-get install wrk; scripts/deps)")
    serve = os.path.join(args.build, "bin", "pyfleet-serve")
    load = os.path.join(args.build, "bin", "pyfleet-serve-load")
    models = args.models.split(",")
    paths = {m: os.path.join(args.build, "examples", m + ".pt") for m in models}
    levels = [int(c) for c in args.concurrency.split(",")]
    tmp = tempfile.mkdtemp(prefix="pyfleet-serve-bench-")
    results = {"machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg(),
                           "interpreters": args.interpreters, "torch_threads": 1, "seconds": args.seconds},
               "runs": []}
    print("pyfleet-serve benchmark: %d CPUs (load average %.1f at the start), pyfleet-serve with %d interpreters, "
          "torch intra-op threads 1 everywhere, %d s per point after %d s of warm-up"
          % (os.cpu_count(), os.getloadavg()[0], args.interpreters, args.seconds, args.warmup), flush=True)
    inputs = {m: write_inputs(m, paths[m], tmp) for m in models}
    model_flags = []
    for m in models:
        model_flags += ["--model", "%s=%s" % (m, paths[m])]
    common = ["--interpreters", str(args.interpreters), "--http-port", "0", "--grpc-port", "0", "--torch-threads", "1",
              "--timeout-ms", "120000"]
    python_args = [sys.executable, os.path.join(HERE, "python_server.py"), "--port", "0", "--torch-threads", "1"]
    servers = []

    def measure(kind, model, concurrency, server):
        script, cases = inputs[model]
        if "gRPC" in kind:
            r = run_grpc(load, "127.0.0.1:%d" % server.grpc_port, model, cases, concurrency, args.seconds, args.warmup)
        else:
            url = "http://127.0.0.1:%d/v2/models/%s/infer" % (server.http_port, model)
            if args.warmup > 0:
                run_wrk(url, script, concurrency, args.warmup)
            r = run_wrk(url, script, concurrency, args.seconds)
        r.update(kind=kind, model=model, concurrency=concurrency)
        results["runs"].append(r)
        return r

    try:
        pyfleet = Server("pyfleet-serve", [serve] + model_flags + common)
        servers.append(pyfleet)
        python = Server("python-server", python_args + model_flags)
        servers.append(python)
        stock_http = Server("python-server --stock-http", python_args + ["--stock-http"] + model_flags)
        servers.append(stock_http)
        kinds = [("pyfleet REST", "pyfleet-serve, REST (wrk)", pyfleet),
                 ("pyfleet gRPC", "pyfleet-serve, gRPC (pyfleet-serve-load)", pyfleet),
                 ("python REST", "python_server, REST (wrk)", python),
                 ("python stock REST", "python_server --stock-http, REST (wrk)", stock_http)]
        table = {}
        for m in models:
            print("\n%-42s %5s %10s %9s %9s %6s" % (m, "conc", "req/s", "p50 ms", "p99 ms", "errors"))
            for c in levels:
                # --repeat rounds, the servers alternating; the median round by throughput.
                runs = {kind: [] for kind, _, _ in kinds}
                for _ in range(args.repeat):
                    for kind, _, server in kinds:
                        runs[kind].append(measure(kind, m, c, server))
                row = {}
                for kind, label, _ in kinds:
                    ordered = sorted(runs[kind], key=lambda r: r["throughput"])
                    row[kind] = ordered[len(ordered) // 2]
                    spread = ("   (%s req/s)" % ", ".join("%.0f" % r["throughput"] for r in runs[kind])
                              if args.repeat > 1 else "")
                    print("%-42s %5d %s%s" % (label, c, fmt(row[kind]), spread), flush=True)
                table[(m, c)] = row
        for server in servers:
            server.stop()

        if ("resnet18", 8) in table and args.batch:
            base = table[("resnet18", 8)]
            print("\nresnet18, concurrency 8, dynamic batching (--batch resnet18=MAX_BATCH:MAX_DELAY_US)")
            print("%-22s | %-37s | %-37s" % ("", "REST (wrk): req/s p50 p99 errors", "gRPC: req/s p50 p99 errors"))
            print("%-22s | %s | %s" % ("no batching", fmt(base["pyfleet REST"]), fmt(base["pyfleet gRPC"])))
            for config in args.batch.split(","):
                batched = Server("pyfleet-serve --batch", [serve, "--model", "resnet18=" + paths["resnet18"],
                                                           "--batch", "resnet18=" + config] + common)
                servers.append(batched)
                try:
                    rest = measure("pyfleet REST batch " + config, "resnet18", 8, batched)
                    grpc = measure("pyfleet gRPC batch " + config, "resnet18", 8, batched)
                    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % batched.http_port,
                                                     timeout=30).read().decode()
                    sizes = re.findall(r'pyfleet_serve_batches_total\{model="resnet18",rows="(\w+)"\} (\d+)', metrics)
                    total = sum(int(n) for _, n in sizes)
                    rows = sum(int(r) * int(n) for r, n in sizes if r != "more")
                    print("%-22s | %s | %s   (mean batch %.2f rows; throughput REST %+.0f%%, gRPC %+.0f%%)"
                          % ("--batch " + config, fmt(rest), fmt(grpc), rows / max(total, 1),
                             100 * (rest["throughput"] / base["pyfleet REST"]["throughput"] - 1),
                             100 * (grpc["throughput"] / base["pyfleet gRPC"]["throughput"] - 1)), flush=True)
                finally:
                    batched.stop()

        if "gil_bound" in models:
            print("\ntargets, gil_bound over REST (pyfleet-serve vs each Python baseline):")
            for c, want in ((8, ">= 3x throughput and a lower p99"), (1, "no slower: throughput and p50")):
                if ("gil_bound", c) not in table:
                    continue
                p = table[("gil_bound", c)]["pyfleet REST"]
                for baseline in ("python REST", "python stock REST"):
                    q = table[("gil_bound", c)][baseline]
                    ratio = p["throughput"] / max(q["throughput"], 1e-9)
                    if c == 8:
                        met = ratio >= 3 and p["p99_ms"] < q["p99_ms"]
                    else:
                        met = ratio >= 1 and p["p50_ms"] <= q["p50_ms"]
                    print("  concurrency %d vs %-19s %.2fx throughput, p50 %.2f vs %.2f ms, p99 %.2f vs %.2f ms: "
                          "%s (%s)" % (c, baseline + ":", ratio, p["p50_ms"], q["p50_ms"], p["p99_ms"], q["p99_ms"],
                                       "met" if met else "NOT met", want))
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
