"""SIGTERM while requests are in flight: the server stops accepting, the requests in
flight (running and queued, HTTP and gRPC) complete, then the process exits 0."""
import json
import socket
import threading
import time

import grpc_predict_v2_pb2 as pb
import requests
import torch

from serve_harness import TIMEOUT, ServeProcess, from_raw, grpc_stub, package, raw_bytes


def test_sigterm_finishes_requests_in_flight_then_exits_0():
    with ServeProcess(["--model", "sleeper=" + package("sleeper"), "--access-log"]) as server:
        stub = grpc_stub(server)
        results = {}

        def rest(i, seconds):
            body = {"id": "r%d" % i, "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [seconds]}]}
            r = requests.post(server.url("/v2/models/sleeper/infer"), data=json.dumps(body), timeout=TIMEOUT)
            results[i] = (r.status_code, r.json())

        def grpc_call(i, seconds):
            answer = stub.ModelInfer(pb.ModelInferRequest(
                model_name="sleeper", inputs=[pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32",
                                                                                     shape=[1])],
                raw_input_contents=[raw_bytes(torch.tensor([seconds]))]), timeout=TIMEOUT)
            results[i] = (200, {"outputs": [{"data": from_raw(answer.raw_output_contents[0], "FP32", [1]).tolist()}]})

        # Two run at once (2 interpreters), two wait in the queue.
        threads = [threading.Thread(target=rest if i % 2 == 0 else grpc_call, args=(i, 1.0)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.4)
        start = time.monotonic()
        server.terminate()
        server.wait_for_line(r"SIGTERM: draining", 10)
        time.sleep(0.2)
        # New connections are refused while the old requests finish.
        with socket.socket() as s:
            s.settimeout(5)
            assert s.connect_ex(("127.0.0.1", server.http_port)) != 0
        for t in threads:
            t.join(TIMEOUT)
        assert server.wait(30) == 0, "\n".join(server.lines)
        assert time.monotonic() - start < 15
        assert sorted(results) == [0, 1, 2, 3]
        for i, (status, body) in results.items():
            assert status == 200, (i, body)
            assert body["outputs"][0]["data"] == [2.0], (i, body)
        assert server.find_line(r"pyfleet-serve: stopped")
