"""How low the memory of N replicas in one pyfleet process can go, measured on this machine.

    /usr/bin/python3 benchmarks/bench/memory_floor.py --build B --package B/examples/resnet18.pt

It measures, each setup while its threads call the model back to back (the processes of
pyfleet-bench, through the protocol of bench_protocol.h, so the figures are pyfleet-bench's):
  - python_processes: N Debian python3 processes, one replica each (the PSS of all of them);
  - multi_python with 1 and with N interpreters (pyfleet-bench-worker);
  - torchscript: the package's TorchScript twin in a process with no Python at all;
  - the Python heap of one replica: what tracemalloc counts in Debian's python3 after
    `import torch`, loading the package with the stock PackageImporter and one call.
and prints the floor: the TorchScript process (LibTorch's code and heap, the weights, one
replica's activations) plus N times the Python heap of one replica. CPython 3.11 gives every
interpreter objects of its own (no immortal objects; code objects are rewritten in place as
they run), so each of pyfleet's interpreters pays that heap as a python3 process does, and
no build of pyfleet's on CPython 3.11 goes below the floor.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"  # Debian's, with torch (a pyenv python3 may come first on PATH)

# Loads the package as pyfleet-bench's python3 workers do (bench_worker.load), counting
# from before `import torch`.
PYTHON_HEAP = r"""
import gc, sys, tracemalloc
sys.path.insert(0, sys.argv[1])
from bench_worker import load
tracemalloc.start()
import torch
model, example = load(sys.argv[2])
torch.set_num_threads(1)
with torch.no_grad():
    model(*example)
gc.collect()
print(tracemalloc.get_traced_memory()[0])
"""


def pss_kb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")


def setup_pss_mb(commands, settle):
    """Starts the commands, waits until each says "ready" (loaded, warmed up, calling),
    lets them call for `settle` seconds and returns the PSS of all of them, in MB."""
    procs = [subprocess.Popen(c, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for c in commands]
    try:
        for p, c in zip(procs, commands):
            line = p.stdout.readline()
            if not line.startswith("ready"):
                raise RuntimeError(f"{' '.join(c)}: no 'ready' line (exit status {p.wait()})")
        time.sleep(settle)
        return sum(pss_kb(p.pid) for p in procs) / 1024
    finally:
        for p in procs:
            p.kill()
            p.wait()


def python_heap_mb(package):
    out = subprocess.run([PYTHON, "-c", PYTHON_HEAP, HERE, package], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1]) / 2**20


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="B", help="pyfleet's build folder (bin/pyfleet-bench-worker)")
    parser.add_argument("--package", required=True)
    parser.add_argument("--twin", help="the TorchScript twin (default: NAME.jit.pt beside the package)")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds of calls before reading memory")
    parser.add_argument("--worker", help="pyfleet-bench-worker (default: BUILD/bin/pyfleet-bench-worker)")
    parser.add_argument("--json", help="also write the figures (MB) to this file")
    args = parser.parse_args(argv)
    n = args.replicas
    if n < 2:
        parser.error("--replicas must be >= 2")
    worker = args.worker or os.path.join(args.build, "bin", "pyfleet-bench-worker")
    twin = args.twin or os.path.splitext(args.package)[0] + ".jit.pt"

    def pyfleet(interpreters):
        return [[worker, "--strategy", "multi_python", "--package", args.package, "--threads", str(interpreters)]]

    python_process = [PYTHON, os.path.join(HERE, "bench_worker.py"), "--package", args.package, "--threads", "1"]
    with tempfile.TemporaryDirectory() as tmp:
        example = os.path.join(tmp, "example.pt")
        subprocess.run([PYTHON, os.path.join(HERE, "bench_worker.py"), "--save-example", args.package, example],
                       check=True)
        torchscript = [[worker, "--strategy", "torchscript", "--twin", twin, "--example", example, "--threads", "1"]]
        processes = setup_pss_mb([python_process] * n, args.settle)
        one = setup_pss_mb(pyfleet(1), args.settle)
        many = setup_pss_mb(pyfleet(n), args.settle)
        script = setup_pss_mb(torchscript, args.settle)
    heap = python_heap_mb(args.package)
    floor = script + n * heap
    further = (many - one) / (n - 1)

    print(f"{os.path.basename(args.package)}, {n} replicas, PSS of the whole setup while it calls the model:")
    print(f"  python_processes ({n} x python3)             {processes:7.1f} MB")
    print(f"  target 0.4x of it                            {0.4 * processes:7.1f} MB")
    print(f"  multi_python, {n} interpreters                 {many:7.1f} MB  {many / processes:.2f}x")
    print(f"  multi_python, 1 interpreter                  {one:7.1f} MB")
    print(f"    each further interpreter                   {further:7.1f} MB")
    print(f"  python3's own Python heap for one replica    {heap:7.1f} MB  (tracemalloc)")
    print(f"  torchscript, no Python                       {script:7.1f} MB")
    print(f"  floor: torchscript + {n} x Python heap         {floor:7.1f} MB  {floor / processes:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"package": args.package, "replicas": n, "python_processes_mb": processes,
                       "multi_python_mb": many, "multi_python_one_mb": one, "further_interpreter_mb": further,
                       "python_heap_mb": heap, "torchscript_mb": script, "floor_mb": floor}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
