"""The baseline of the serving benchmark: the same models served the way a Python user
would today. A threaded HTTP server from the standard library (http.server's
ThreadingHTTPServer, one thread per connection, HTTP/1.1 keep-alive, TCP_NODELAY), torch.package's
stock PackageImporter, one Python interpreter (one GIL), torch.no_grad(), and the same
JSON protocol as pyfleet-serve's REST API (Open Inference Protocol, KServe v2):

    /usr/bin/python3 benchmarks/serve/python_server.py --port 0 \
        --model gil=B/examples/gil_bound.pt --model resnet18=B/examples/resnet18.pt
    # prints "python-server: HTTP on http://127.0.0.1:PORT", then "python-server: ready"

    POST /v2/models/NAME/infer   {"inputs": [{"name", "shape", "datatype", "data"}]}
    GET  /v2/health/ready

Inputs are taken in the order of the model's example arguments (model/example.pkl);
outputs are named output__0.. like pyfleet-serve's. torch's intra-op threads are set to
--torch-threads (default 1, as pyfleet-serve's default).
"""
import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
from torch.package import PackageImporter

DTYPES = {"BOOL": torch.bool, "UINT8": torch.uint8, "INT8": torch.int8, "INT16": torch.int16, "INT32": torch.int32,
          "INT64": torch.int64, "FP16": torch.float16, "FP32": torch.float32, "FP64": torch.float64}
NAMES = {v: k for k, v in DTYPES.items()}

MODELS = {}  # name -> model


def tensor_json(name, t):
    return {"name": name, "datatype": NAMES[t.dtype], "shape": list(t.shape), "data": t.flatten().tolist()}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as pyfleet-serve and load generators use
    # Without it every answer waits ~40 ms: headers and body leave in two writes, and
    # Nagle holds the second until the client's delayed ACK. A fair baseline sets it.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path in ("/v2/health/live", "/v2/health/ready"):
            self.reply(200, {"live": True} if self.path.endswith("live") else {"ready": True})
        else:
            self.reply(404, {"error": "no route for GET " + self.path})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        parts = self.path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v2", "models"] or parts[3] != "infer" or parts[2] not in MODELS:
            return self.reply(404, {"error": "no route for POST " + self.path})
        try:
            request = json.loads(body)
            args = [torch.tensor(i["data"], dtype=DTYPES[i["datatype"]]).reshape(i["shape"])
                    for i in request["inputs"]]
            with torch.no_grad():
                out = MODELS[parts[2]](*args)
            outs = out if isinstance(out, (tuple, list)) else [out]
            self.reply(200, {"model_name": parts[2], "model_version": "1",
                             "outputs": [tensor_json("output__%d" % i, t) for i, t in enumerate(outs)]})
        except Exception as e:  # the protocol's error object
            self.reply(400, {"error": "%s: %s" % (type(e).__name__, e)})


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=PACKAGE")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--stock-http", action="store_true",
                        help="http.server's own defaults: HTTP/1.0 (a connection per request), Nagle on")
    args = parser.parse_args(argv)
    if args.stock_http:
        Handler.protocol_version = BaseHTTPRequestHandler.protocol_version
        Handler.disable_nagle_algorithm = False
    torch.set_num_threads(args.torch_threads)
    for spec in args.model:
        name, path = spec.split("=", 1)
        importer = PackageImporter(path)
        MODELS[name] = importer.load_pickle("model", "model.pkl")
        example = importer.load_pickle("model", "example.pkl")
        with torch.no_grad():
            MODELS[name](*example)  # warm
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    print("python-server: HTTP on http://%s:%d" % (args.host, server.server_address[1]), flush=True)
    print("python-server: ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
