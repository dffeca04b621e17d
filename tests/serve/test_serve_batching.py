"""Dynamic batching (--batch NAME=MAX_BATCH:MAX_DELAY_US) on ResNet-18: concurrent
requests are joined into one call and split back, and every answer equals the stock
importer's unbatched one (bit for bit)."""
import re
import threading

import grpc_predict_v2_pb2 as pb
import pytest
import requests
import torch

from serve_harness import (TIMEOUT, ServeProcess, StockModel, example, from_json_tensor, from_raw, grpc_stub,
                           json_tensor, raw_bytes)


@pytest.fixture(scope="module")
def server():
    # A long delay: requests sent together surely meet in one batch.
    with ServeProcess(["--model", "resnet18=" + example("resnet18"), "--batch", "resnet18=4:200000"]) as s:
        assert "pyfleet-serve: ready" in s.ready_line
        yield s


@pytest.fixture(scope="module")
def stock():
    return StockModel(example("resnet18"))


def batches(server):
    text = requests.get(server.url("/metrics"), timeout=TIMEOUT).text
    return {int(rows): int(n) for rows, n in
            re.findall(r'^pyfleet_serve_batches_total\{model="resnet18",rows="(\d+)"\} (\d+)$', text, re.M)}


def test_metadata_has_a_variable_batch_dimension(server):
    r = requests.get(server.url("/v2/models/resnet18"), timeout=TIMEOUT).json()
    assert r["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3, 224, 224]}]
    assert r["outputs"] == [{"name": "output__0", "datatype": "FP32", "shape": [-1, 1000]}]


def test_concurrent_requests_are_batched_and_answers_equal_unbatched(server, stock):
    before = batches(server)
    g = torch.Generator().manual_seed(11)
    xs = [torch.randn(1, 3, 224, 224, generator=g) for _ in range(8)]
    answers = [None] * len(xs)
    stub = grpc_stub(server)

    def rest(i):
        r = requests.post(server.url("/v2/models/resnet18/infer"), json={"inputs": [json_tensor("x", xs[i])]},
                          timeout=TIMEOUT)
        answers[i] = from_json_tensor(r.json()["outputs"][0]) if r.status_code == 200 else r.text

    def grpc_call(i):
        answer = stub.ModelInfer(pb.ModelInferRequest(
            model_name="resnet18", inputs=[pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32",
                                                                                  shape=[1, 3, 224, 224])],
            raw_input_contents=[raw_bytes(xs[i])]), timeout=TIMEOUT)
        answers[i] = from_raw(answer.raw_output_contents[0], "FP32", answer.outputs[0].shape)

    threads = [threading.Thread(target=rest if i % 2 == 0 else grpc_call, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    for i, x in enumerate(xs):
        assert isinstance(answers[i], torch.Tensor), answers[i]
        assert torch.equal(answers[i], stock(x)), i
    after = batches(server)
    new = {rows: after.get(rows, 0) - before.get(rows, 0) for rows in after}
    assert sum(rows * n for rows, n in new.items()) == len(xs)
    assert max(rows for rows, n in new.items() if n > 0) > 1, new  # some calls held several requests


def test_a_request_of_several_rows(server, stock):
    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    r = requests.post(server.url("/v2/models/resnet18/infer"), json={"inputs": [json_tensor("x", x)]},
                      timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    y = from_json_tensor(r.json()["outputs"][0])
    assert y.shape == (3, 1000)
    for i in range(3):
        assert torch.equal(y[i:i + 1], stock(x[i:i + 1])), i
