"""pyfleet-bench's Python worker: the model served the way users do it today, with Debian's
python3 and the stock torch.package.PackageImporter.

    python3 bench_worker.py --package P --threads T [--warmup W]   # one measurement
    python3 bench_worker.py --save-example P OUT                   # example args, torch.save

pyfleet-bench starts one of these with T threads (strategy python_threads) or T of them
with one thread each (python_processes), and speaks the line protocol of
bench_protocol.h with each: "ready ..." once warmed up, "go T0 TEND" back (CLOCK_MONOTONIC
ns), "result N LAT_NS..." for the N calls that ended inside the window. Threads call the
model back to back from load to the end of the window (Note [Measuring window]).
torch.set_num_threads(1) and torch.no_grad(), as the C++ strategies do.
"""
import argparse
import os
import platform
import sys
import threading
import time
import traceback

MIN_WARMUP_CALLS = 3  # bench_protocol.h kMinWarmupCalls


def load(package):
    from torch.package import PackageImporter

    importer = PackageImporter(package)
    model = importer.load_pickle("model", "model.pkl")
    example = importer.load_pickle("model", "example.pkl")
    return model, example if isinstance(example, tuple) else (example,)


def save_example(package, out):
    import torch

    _, example = load(package)
    torch.save(example, out)


def measure(package, threads, warmup):
    import torch

    torch.set_num_threads(1)  # the comparison is about the GIL, not intra-op parallelism
    model, example = load(package)
    window = [sys.maxsize, sys.maxsize]  # t0, t_end: set together by the main thread
    latencies = [[] for _ in range(threads)]
    warmed = threading.Semaphore(0)
    failed = []

    def worker(i):
        try:
            args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in example)
            lat = latencies[i]
            start = time.monotonic_ns()
            warm_until = start + int(warmup * 1e9)
            n = 0
            warm = False
            with torch.no_grad():
                while not failed:
                    s = time.monotonic_ns()
                    model(*args)
                    e = time.monotonic_ns()
                    n += 1
                    if not warm and n >= MIN_WARMUP_CALLS and e >= warm_until:
                        warm = True
                        warmed.release()
                    t0, t_end = window
                    if e >= t0:
                        if e > t_end:
                            break
                        lat.append(e - s)
        except BaseException:
            failed.append(traceback.format_exc())
            warmed.release()

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for _ in range(threads):
        warmed.acquire()
    if failed:
        raise RuntimeError(failed[0])
    print(f"ready intra_op_threads={torch.get_num_threads()} torch={torch.__version__} "
          f"python={platform.python_version()}", flush=True)
    line = sys.stdin.readline().split()
    if len(line) != 3 or line[0] != "go":
        failed.append("no go")
        raise RuntimeError(f"expected 'go T0 TEND', got {line!r}")
    window[:] = [int(line[1]), int(line[2])]  # one list assignment: atomic under the GIL
    for t in pool:
        t.join()
    if failed:
        raise RuntimeError(failed[0])
    n = sum(len(lat) for lat in latencies)
    sys.stdout.write(" ".join(["result", str(n)] + [str(x) for lat in latencies for x in lat]) + "\n")
    sys.stdout.flush()


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--save-example", nargs=2, metavar=("PACKAGE", "OUT"))
    args = parser.parse_args(argv)
    if args.save_example:
        save_example(*args.save_example)
    elif args.package:
        measure(args.package, args.threads, args.warmup)
    else:
        parser.error("--package or --save-example is required")
    # Exits without tearing torch down: the measurement is over.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
