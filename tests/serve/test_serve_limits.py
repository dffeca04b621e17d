"""Limits: a full queue answers 503 / RESOURCE_EXHAUSTED at once, a body past
--max-body-bytes 413, and the server keeps serving."""
import json
import threading
import time

import grpc
import grpc_predict_v2_pb2 as pb
import pytest
import requests
import torch

from serve_harness import TIMEOUT, ServeProcess, grpc_stub, package, raw_bytes

MAX_BODY = 4096


@pytest.fixture(scope="module")
def server():
    with ServeProcess(["--model", "sleeper=" + package("sleeper"), "--max-queue", "1",
                       "--max-body-bytes", str(MAX_BODY)]) as s:
        yield s


def sleep_body(seconds):
    return {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [seconds]}]}


def post(server, body):
    return requests.post(server.url("/v2/models/sleeper/infer"), data=json.dumps(body), timeout=TIMEOUT)


def test_full_queue_is_503_then_the_queued_ones_finish(server):
    # 2 interpreters busy, 1 call queued: the queue (--max-queue 1) is full.
    results = [None] * 3

    def busy(i):
        results[i] = post(server, sleep_body(1.5))

    threads = [threading.Thread(target=busy, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    time.sleep(0.3)
    start = time.monotonic()
    r = post(server, sleep_body(0.0))
    assert r.status_code == 503, r.text
    assert "the queue holds 1 calls" in r.json()["error"]
    assert time.monotonic() - start < 1.0  # refused at once
    with pytest.raises(grpc.RpcError) as e:
        grpc_stub(server).ModelInfer(pb.ModelInferRequest(
            model_name="sleeper", inputs=[pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1])],
            raw_input_contents=[raw_bytes(torch.tensor([0.0]))]), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    for t in threads:
        t.join(TIMEOUT)
    assert [r.status_code for r in results] == [200, 200, 200]
    assert post(server, sleep_body(0.0)).status_code == 200
    text = requests.get(server.url("/metrics"), timeout=TIMEOUT).text
    assert "pyfleet_calls_rejected_total 2" in text
    assert 'pyfleet_serve_requests_total{model="sleeper",protocol="http",status="RESOURCE_EXHAUSTED"} 1' in text


def test_body_too_large_is_413(server):
    r = requests.post(server.url("/v2/models/sleeper/infer"), data=b"[" * (MAX_BODY + 1), timeout=TIMEOUT)
    assert r.status_code == 413
    assert r.json() == {"error": "the request body is larger than --max-body-bytes (%d bytes)" % MAX_BODY}
    with pytest.raises(grpc.RpcError) as e:
        grpc_stub(server).ModelInfer(pb.ModelInferRequest(model_name="sleeper", id="x" * (MAX_BODY + 1)),
                                     timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert post(server, sleep_body(0.0)).status_code == 200
