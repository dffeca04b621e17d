"""pyfleet-serve speaks the Open Inference Protocol: REST (python3-requests, curl) and gRPC
(python3-grpcio), results equal to the stock torch.package importer's, protocol errors for
bad requests with the server still serving, metrics, the access log, and a model that
fails to load making the server not ready (saying why) while the others serve.

One server for the whole module: 2 interpreters serving the GIL-bound and ResNet-18
example packages and the test packages (raiser, sleeper, all_types, broken).
"""
import json
import os
import re
import subprocess
import time

import grpc
import grpc_predict_v2_pb2 as pb
import pytest
import requests
import torch

from serve_harness import (TIMEOUT, ServeProcess, StockModel, example, from_json_tensor, from_raw, grpc_stub,
                           json_tensor, package, raw_bytes)

MAX_BODY = 8_000_000  # the ResNet-18 JSON request is ~3 MB


@pytest.fixture(scope="module")
def server():
    args = ["--model", "gil=" + example("gil_bound"), "--model", "resnet18=" + example("resnet18"),
            "--model", "raiser=" + package("raiser"), "--model", "sleeper=" + package("sleeper"),
            "--model", "all_types=" + package("all_types"), "--model", "broken=" + package("broken"),
            "--max-body-bytes", str(MAX_BODY), "--access-log"]
    with ServeProcess(args) as s:
        yield s


@pytest.fixture(scope="module")
def stub(server):
    return grpc_stub(server)


@pytest.fixture(scope="module")
def stock():
    return {"gil": StockModel(example("gil_bound")), "resnet18": StockModel(example("resnet18"))}


def inputs_for(name, seed):
    g = torch.Generator().manual_seed(seed)
    shape = (1, 8) if name == "gil" else (1, 3, 224, 224)
    return torch.randn(*shape, generator=g)


def post_infer(server, model, body, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.url("/v2/models/%s/infer" % model), data=data,
                         headers={"Content-Type": "application/json"}, timeout=TIMEOUT, **kwargs)


def assert_still_serving(server, stock):
    x = inputs_for("gil", 99)
    r = post_infer(server, "gil", {"inputs": [json_tensor("x", x)]})
    assert r.status_code == 200, r.text
    assert torch.equal(from_json_tensor(r.json()["outputs"][0]), stock["gil"](x))


# ---- health and metadata ---------------------------------------------------------------

def test_live(server, stub):
    r = requests.get(server.url("/v2/health/live"), timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"live": True}
    assert stub.ServerLive(pb.ServerLiveRequest(), timeout=TIMEOUT).live


def test_failed_model_makes_the_server_not_ready_and_says_why(server, stub):
    assert "NOT ready" in server.ready_line
    r = requests.get(server.url("/v2/health/ready"), timeout=TIMEOUT)
    assert r.status_code == 400
    assert r.json()["ready"] is False
    assert "model 'broken' failed to load" in r.json()["error"]
    assert "ModuleNotFoundError" in r.json()["error"]
    r = requests.get(server.url("/v2/models/broken/ready"), timeout=TIMEOUT)
    assert r.status_code == 400 and r.json()["ready"] is False
    assert "ModuleNotFoundError: No module named 'serve_models'" in r.json()["error"]
    r = requests.get(server.url("/v2/models/broken"), timeout=TIMEOUT)
    assert r.status_code == 503 and "failed to load" in r.json()["error"]
    r = post_infer(server, "broken", {"inputs": []})
    assert r.status_code == 503 and "is not ready" in r.json()["error"]
    assert not stub.ServerReady(pb.ServerReadyRequest(), timeout=TIMEOUT).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="broken"), timeout=TIMEOUT).ready
    # The others serve.
    for name in ("gil", "resnet18", "raiser", "sleeper", "all_types"):
        r = requests.get(server.url("/v2/models/%s/ready" % name), timeout=TIMEOUT)
        assert r.status_code == 200 and r.json()["ready"] is True, name
        assert stub.ModelReady(pb.ModelReadyRequest(name=name), timeout=TIMEOUT).ready, name


def test_server_metadata(server, stub):
    r = requests.get(server.url("/v2"), timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json() == {"name": "pyfleet-serve", "version": "0.1", "extensions": []}
    m = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=TIMEOUT)
    assert (m.name, m.version) == ("pyfleet-serve", "0.1")


def test_model_metadata_from_the_example(server, stub):
    for path in ("/v2/models/gil", "/v2/models/gil/versions/1"):
        r = requests.get(server.url(path), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        assert r.json() == {"name": "gil", "versions": ["1"], "platform": "pyfleet_torch_package",
                            "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 8]}],
                            "outputs": [{"name": "output__0", "datatype": "FP32", "shape": [1, 8]}]}
    m = stub.ModelMetadata(pb.ModelMetadataRequest(name="resnet18"), timeout=TIMEOUT)
    assert [(t.name, t.datatype, list(t.shape)) for t in m.inputs] == [("x", "FP32", [1, 3, 224, 224])]
    assert [(t.name, t.datatype, list(t.shape)) for t in m.outputs] == [("output__0", "FP32", [1, 1000])]
    r = requests.get(server.url("/v2/models/all_types"), timeout=TIMEOUT)
    assert [i["name"] for i in r.json()["inputs"]] == ["b", "u8", "i8", "i16", "i32", "i64", "f16", "f32", "f64"]
    assert [o["datatype"] for o in r.json()["outputs"]] == ["BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64",
                                                            "FP16", "FP32", "FP64"]
    r = requests.get(server.url("/v2/models/gil/versions/2"), timeout=TIMEOUT)
    assert r.status_code == 404 and "has no version '2'" in r.json()["error"]
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelMetadata(pb.ModelMetadataRequest(name="nope"), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


# ---- inference equals the stock importer's ---------------------------------------------

@pytest.mark.parametrize("model", ["gil", "resnet18"])
def test_rest_inference_equals_stock_importer(server, stock, model):
    for seed in range(3):
        x = inputs_for(model, seed)
        body = {"id": "req-%d" % seed, "inputs": [json_tensor("x", x)]}
        path = "/v2/models/%s/infer" if seed != 1 else "/v2/models/%s/versions/1/infer"
        r = requests.post(server.url(path % model), json=body, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert (answer["model_name"], answer["model_version"], answer["id"]) == (model, "1", "req-%d" % seed)
        assert [o["name"] for o in answer["outputs"]] == ["output__0"]
        assert torch.equal(from_json_tensor(answer["outputs"][0]), stock[model](x)), (model, seed)


@pytest.mark.parametrize("model", ["gil", "resnet18"])
def test_grpc_inference_equals_stock_importer(server, stub, stock, model):
    for seed in range(3):
        x = inputs_for(model, 100 + seed)
        request = pb.ModelInferRequest(model_name=model, id="g%d" % seed,
                                       inputs=[pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32",
                                                                                      shape=list(x.shape))],
                                       raw_input_contents=[raw_bytes(x)])
        if seed == 1:
            request.model_version = "1"
        answer = stub.ModelInfer(request, timeout=TIMEOUT)
        assert (answer.model_name, answer.id) == (model, "g%d" % seed)
        out = answer.outputs[0]
        assert (out.name, out.datatype) == ("output__0", "FP32")
        y = from_raw(answer.raw_output_contents[0], out.datatype, out.shape)
        assert torch.equal(y, stock[model](x)), (model, seed)


def test_grpc_typed_contents(server, stub, stock):
    x = inputs_for("gil", 7)
    contents = pb.InferTensorContents(fp32_contents=x.flatten().tolist())
    request = pb.ModelInferRequest(model_name="gil", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="x", datatype="FP32", shape=[1, 8], contents=contents)])
    answer = stub.ModelInfer(request, timeout=TIMEOUT)
    y = from_raw(answer.raw_output_contents[0], "FP32", answer.outputs[0].shape)
    assert torch.equal(y, stock["gil"](x))


def test_curl_inference(server, stock, tmp_path):
    x = inputs_for("gil", 5)
    body = tmp_path / "request.json"
    body.write_text(json.dumps({"inputs": [json_tensor("x", x)]}))
    # curl is not ours: without the sanitizer runtime scripts/test-sanitizers preloads
    # into every process (under it, curl hangs).
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    out = subprocess.run(["curl", "-sS", "--max-time", "30", "-H", "Content-Type: application/json",
                          "--data-binary", "@%s" % body, server.url("/v2/models/gil/infer")],
                         check=True, capture_output=True, text=True, timeout=TIMEOUT, env=env).stdout
    assert torch.equal(from_json_tensor(json.loads(out)["outputs"][0]), stock["gil"](x))


def all_types_inputs():
    return [
        ("b", torch.tensor([True, False, False])),
        ("u8", torch.tensor([0, 1, 254], dtype=torch.uint8)),
        ("i8", torch.tensor([-127, 5, 127], dtype=torch.int8)),
        ("i16", torch.tensor([-1000, 1, 1000], dtype=torch.int16)),
        ("i32", torch.tensor([-100000, 2, 100000], dtype=torch.int32)),
        ("i64", torch.tensor([-(2**50), 3, 2**50], dtype=torch.int64)),
        ("f16", torch.tensor([0.25, -8.5, 100.0], dtype=torch.float16)),
        ("f32", torch.tensor([0.1, 1e-8, -3.25], dtype=torch.float32)),
        ("f64", torch.tensor([1.0, 1e-300, -7.0], dtype=torch.float64)),
    ]


def test_every_datatype_over_rest_and_grpc(server, stub):
    stock_model = StockModel(package("all_types"))
    inputs = all_types_inputs()
    expected = stock_model(*[t for _, t in inputs])
    r = post_infer(server, "all_types", {"inputs": [json_tensor(n, t) for n, t in reversed(inputs)]})
    assert r.status_code == 200, r.text
    got = {o["name"]: from_json_tensor(o) for o in r.json()["outputs"]}
    assert list(got) == list(expected)
    for name, t in expected.items():
        assert got[name].dtype == t.dtype and torch.equal(got[name], t), name
    # gRPC, raw contents; only two outputs asked for, in the order asked.
    request = pb.ModelInferRequest(model_name="all_types", outputs=[
        pb.ModelInferRequest.InferRequestedOutputTensor(name="f16_times_2"),
        pb.ModelInferRequest.InferRequestedOutputTensor(name="not_b")])
    for name, t in inputs:
        request.inputs.add(name=name, datatype={torch.bool: "BOOL", torch.uint8: "UINT8", torch.int8: "INT8",
                                                torch.int16: "INT16", torch.int32: "INT32", torch.int64: "INT64",
                                                torch.float16: "FP16", torch.float32: "FP32",
                                                torch.float64: "FP64"}[t.dtype], shape=list(t.shape))
        request.raw_input_contents.append(raw_bytes(t))
    answer = stub.ModelInfer(request, timeout=TIMEOUT)
    assert [o.name for o in answer.outputs] == ["f16_times_2", "not_b"]
    for o, raw in zip(answer.outputs, answer.raw_output_contents):
        assert torch.equal(from_raw(raw, o.datatype, o.shape), expected[o.name]), o.name


# ---- bad requests: a protocol error each, and the server still serves ---------------------

BAD_REQUESTS = [
    # (what, model, body, status, message)
    ("malformed JSON", "gil", b'{"inputs": [{"name": "x", ', 400, "malformed JSON at byte"),
    ("not JSON at all", "gil", b"\x00\xffgarbage", 400, "malformed JSON"),
    ("unknown datatype", "gil", {"inputs": [{"name": "x", "shape": [1, 8], "datatype": "FLOAT", "data": [0] * 8}]},
     400, 'unsupported datatype "FLOAT"'),
    ("wrong datatype", "gil", {"inputs": [{"name": "x", "shape": [1, 8], "datatype": "INT64", "data": [0] * 8}]},
     400, "datatype INT64 does not match the model's FP32"),
    ("shape not matching data", "gil", {"inputs": [{"name": "x", "shape": [1, 8], "datatype": "FP32",
                                                    "data": [0.5] * 7}]},
     400, "the shape holds 8 elements, 'data' has 7"),
    ("shape not matching the model", "gil", {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                                         "data": [0.5] * 8}]},
     400, "shape [2, 4] does not match the model's [1, 8]"),
    ("unknown input", "gil", {"inputs": [{"name": "y", "shape": [1, 8], "datatype": "FP32", "data": [0] * 8}]},
     400, "model 'gil' has no input 'y' (inputs: x)"),
    ("missing input", "gil", {"inputs": []}, 400, "missing input 'x'"),
    ("unknown output", "gil", {"inputs": [{"name": "x", "shape": [1, 8], "datatype": "FP32", "data": [0] * 8}],
                               "outputs": [{"name": "z"}]}, 400, "has no output 'z'"),
    ("unknown model", "nope", {"inputs": []}, 404, "unknown model 'nope'"),
    ("model raises ValueError", "raiser", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                                       "data": [-3, 0, 0, 0]}]},
     400, "model 'raiser' raised ValueError: negative input: -3.0"),
    ("model raises KeyError (not a 404)", "raiser", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                                                 "data": [500, 0, 0, 0]}]},
     400, "model 'raiser' raised KeyError: 'too big'"),
]


@pytest.mark.parametrize("what,model,body,status,message", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_request_is_a_protocol_error(server, stock, what, model, body, status, message):
    r = post_infer(server, model, body)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert message in r.json()["error"], r.json()
    assert_still_serving(server, stock)


def test_oversized_body(server, stock):
    body = b'{"inputs": [' + b" " * (MAX_BODY + 1000) + b"]}"
    r = post_infer(server, "gil", body)
    assert r.status_code == 413
    assert "--max-body-bytes (%d bytes)" % MAX_BODY in r.json()["error"]
    assert_still_serving(server, stock)


def test_unknown_route(server):
    r = requests.get(server.url("/v3/whatever"), timeout=TIMEOUT)
    assert r.status_code == 404 and r.json() == {"error": "no route for GET /v3/whatever"}


def test_grpc_errors(server, stub, stock):
    def infer(request):
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(request, timeout=TIMEOUT)
        return e.value

    tensor = pb.ModelInferRequest.InferInputTensor
    e = infer(pb.ModelInferRequest(model_name="nope"))
    assert e.code() == grpc.StatusCode.NOT_FOUND and "unknown model 'nope'" in e.details()
    e = infer(pb.ModelInferRequest(model_name="raiser", inputs=[tensor(name="x", datatype="FP32", shape=[1, 4])],
                                   raw_input_contents=[raw_bytes(torch.tensor([[-1.0, 0, 0, 0]]))]))
    assert e.code() == grpc.StatusCode.UNKNOWN and "raised ValueError: negative input: -1.0" in e.details()
    e = infer(pb.ModelInferRequest(model_name="gil", inputs=[tensor(name="x", datatype="FP32", shape=[1, 8])],
                                   raw_input_contents=[b"\0" * 31]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "needs 32 bytes of raw contents, got 31" in e.details()
    e = infer(pb.ModelInferRequest(model_name="gil", inputs=[tensor(name="x", datatype="INT32", shape=[1, 8])],
                                   raw_input_contents=[b"\0" * 32]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "datatype INT32 does not match" in e.details()
    assert_still_serving(server, stock)


def test_deadline_exceeded_then_still_serving(server, stub, stock):
    sleepy = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [5.0]}]}
    start = time.monotonic()
    r = post_infer(server, "sleeper", dict(sleepy, parameters={"timeout": 300_000}))
    assert r.status_code == 504, r.text
    assert "deadline" in r.json()["error"]
    assert time.monotonic() - start < 3.0  # on time, not after the model's 5 s
    start = time.monotonic()
    request = pb.ModelInferRequest(model_name="sleeper", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="x", datatype="FP32", shape=[1])], raw_input_contents=[raw_bytes(torch.tensor([5.0]))])
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(request, timeout=0.3)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - start < 3.0
    # The interrupted interpreters are back in service: both answer quickly.
    for _ in range(4):
        r = post_infer(server, "sleeper", {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [0.01]}]})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == [pytest.approx(0.02)]
    assert_still_serving(server, stock)


# ---- operations -------------------------------------------------------------------------

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]+="[^"]*",?)*\})? [-+0-9.eEInfNa]+$')


def test_metrics(server, stock):
    assert_still_serving(server, stock)
    r = requests.get(server.url("/metrics"), timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    text = r.text
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or SAMPLE.match(line), line
    ok = re.search(r'^pyfleet_serve_requests_total\{model="gil",protocol="http",status="OK"\} (\d+)$', text, re.M)
    assert ok and int(ok.group(1)) >= 1
    count = re.search(r'^pyfleet_serve_request_duration_seconds_count\{model="gil",protocol="http"\} (\d+)$', text,
                      re.M)
    assert count and int(count.group(1)) >= int(ok.group(1))
    assert re.search(r'^pyfleet_serve_request_duration_seconds_bucket\{model="gil",protocol="http",le="\+Inf"\} \d+$',
                     text, re.M)
    for gauge in ("pyfleet_queue_depth", "pyfleet_busy_interpreters", "pyfleet_stuck_interpreters",
                  "pyfleet_interpreters", "pyfleet_serve_in_flight_requests"):
        assert re.search(r"^%s \d+$" % gauge, text, re.M), gauge
    assert re.search(r'^pyfleet_interpreter_stuck\{interpreter="1"\} [01]$', text, re.M)
    assert re.search(r'^pyfleet_call_run_seconds_count \d+$', text, re.M)
    assert 'pyfleet_serve_model_ready{model="broken"} 0' in text
    assert 'pyfleet_serve_model_ready{model="gil"} 1' in text


def test_access_log(server, stock):
    x = inputs_for("gil", 3)
    r = post_infer(server, "gil", {"id": "logged-1", "inputs": [json_tensor("x", x)]})
    assert r.status_code == 200
    line = server.wait_for_line(r'^\{.*"id":"logged-1".*\}$', 10).group(0)
    entry = json.loads(line)
    assert entry["protocol"] == "http" and entry["method"] == "POST"
    assert entry["path"] == "/v2/models/gil/infer" and entry["model"] == "gil"
    assert entry["status"] == 200 and entry["code"] == "OK"
    assert entry["duration_ms"] >= 0 and entry["bytes_in"] > 0 and entry["bytes_out"] > 0
    assert entry["remote"].startswith("127.0.0.1:")
    post_infer(server, "raiser", {"id": "logged-2", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                                               "data": [-1, 0, 0, 0]}]})
    entry = json.loads(server.wait_for_line(r'^\{.*"id":"logged-2".*\}$', 10).group(0))
    assert entry["status"] == 400 and entry["code"] == "UNKNOWN" and "ValueError" in entry["error"]
