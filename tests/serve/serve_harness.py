"""Starts and stops pyfleet-serve for the tests, and computes expected outputs with the
stock torch.package importer.

    with ServeProcess(["--model", "gil=" + example("gil_bound")]) as server:
        requests.get(server.url("/v2/health/ready"))
        grpc_stub(server).ServerLive(pb.ServerLiveRequest())
    # stopped (SIGTERM, then SIGKILL if it hangs), even if the test failed

Servers listen on 127.0.0.1 with ports the OS picks (--http-port 0 --grpc-port 0); the
harness reads them from the server's first lines. Paths come from the environment ctest
sets (tests/serve/CMakeLists.txt): PYFLEET_SERVE, PYFLEET_SERVE_LOAD,
PYFLEET_EXAMPLES_DIR, PYFLEET_SERVE_PACKAGES, and the generated stubs on PYTHONPATH.
"""
import os
import re
import signal
import subprocess
import threading
import time

import torch
from torch.package import PackageImporter

SERVE = os.environ.get("PYFLEET_SERVE", "")
SERVE_LOAD = os.environ.get("PYFLEET_SERVE_LOAD", "")
EXAMPLES = os.environ.get("PYFLEET_EXAMPLES_DIR", "")
PACKAGES = os.environ.get("PYFLEET_SERVE_PACKAGES", "")

# Every request a test makes is bounded.
TIMEOUT = 60


def example(name):
    """The path of example package `name` (B/examples/NAME.pt)."""
    return os.path.join(EXAMPLES, name + ".pt")


def package(name):
    """The path of test package `name` (make_serve_packages.py)."""
    return os.path.join(PACKAGES, name + ".pt")


class StockModel:
    """A package's model through torch's own PackageImporter, as a Python user has it."""

    def __init__(self, path):
        torch.set_num_threads(1)
        importer = PackageImporter(path)
        self.model = importer.load_pickle("model", "model.pkl")
        self.example = importer.load_pickle("model", "example.pkl")

    def __call__(self, *args):
        with torch.no_grad():
            return self.model(*args)


class ServeProcess:
    """One pyfleet-serve process: started in __enter__ (waits until its models loaded),
    stopped in __exit__."""

    def __init__(self, args, interpreters=2, start_timeout=180):
        self.args = [SERVE, "--interpreters", str(interpreters), "--http-port", "0", "--grpc-port", "0"] + list(args)
        self.start_timeout = start_timeout
        self.lines = []  # everything the server printed (stdout and stderr)
        self._lock = threading.Lock()
        self._seen = threading.Condition(self._lock)
        self.process = None
        self.http_port = self.grpc_port = None

    def __enter__(self):
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = self.wait_for_line(r"pyfleet-serve: (ready|NOT ready)", self.start_timeout)
        http = self.find_line(r"HTTP on http://127\.0\.0\.1:(\d+)")
        grpc = self.find_line(r"gRPC on 127\.0\.0\.1:(\d+)")
        self.http_port = int(http.group(1)) if http else None
        self.grpc_port = int(grpc.group(1)) if grpc else None
        self.ready_line = line.group(0)
        return self

    def __exit__(self, *exc):
        self.stop()

    def _read(self):
        for line in self.process.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        with self._lock:
            self._seen.notify_all()

    def find_line(self, pattern):
        with self._lock:
            for line in self.lines:
                m = re.search(pattern, line)
                if m:
                    return m
        return None

    def wait_for_line(self, pattern, timeout):
        """The first line matching `pattern`, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    m = re.search(pattern, line)
                    if m:
                        return m
                seen = len(self.lines)
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError("pyfleet-serve exited (%s) before %r:\n%s"
                                       % (self.process.returncode, pattern, "\n".join(self.lines)))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no %r from pyfleet-serve in %s s:\n%s" % (pattern, timeout, "\n".join(self.lines)))
                self._seen.wait(min(left, 0.5))

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    @property
    def grpc_target(self):
        return "127.0.0.1:%d" % self.grpc_port

    def rss_kb(self):
        with open("/proc/%d/status" % self.process.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def terminate(self):
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout):
        return self.process.wait(timeout=timeout)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def grpc_stub(server):
    """A GRPCInferenceService stub on `server` (stubs generated at build time)."""
    import grpc
    import grpc_predict_v2_pb2_grpc as pb_grpc

    channel = grpc.insecure_channel(server.grpc_target, options=[("grpc.max_receive_message_length", -1),
                                                                 ("grpc.max_send_message_length", -1)])
    return pb_grpc.GRPCInferenceServiceStub(channel)


DATATYPES = {
    torch.bool: "BOOL", torch.uint8: "UINT8", torch.int8: "INT8", torch.int16: "INT16", torch.int32: "INT32",
    torch.int64: "INT64", torch.float16: "FP16", torch.float32: "FP32", torch.float64: "FP64",
}
DTYPES = {v: k for k, v in DATATYPES.items()}


def json_tensor(name, t):
    """`t` as the protocol's JSON tensor."""
    return {"name": name, "shape": list(t.shape), "datatype": DATATYPES[t.dtype], "data": t.flatten().tolist()}


def from_json_tensor(j):
    """A protocol JSON tensor (an output) as a torch tensor."""
    return torch.tensor(j["data"], dtype=DTYPES[j["datatype"]]).reshape(j["shape"])


def raw_bytes(t):
    """`t`'s elements as the protocol's raw contents (little-endian, row-major)."""
    return t.contiguous().numpy().tobytes() if t.dtype != torch.float16 else t.contiguous().view(torch.int16).numpy().tobytes()


def from_raw(raw, datatype, shape):
    dtype = DTYPES[datatype]
    if dtype == torch.float16:
        return torch.frombuffer(bytearray(raw), dtype=torch.int16).view(torch.float16).reshape(list(shape))
    return torch.frombuffer(bytearray(raw), dtype=dtype).reshape(list(shape)) if raw else torch.empty(list(shape), dtype=dtype)
