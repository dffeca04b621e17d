"""A bounded load test on loopback: 20,000 HTTP/REST requests at concurrency 16 against
2 interpreters (the GIL-bound example model), every answer checked against the stock
importer's, 0 errors, p50/p99 printed, and the server's RSS flat. pyfleet-serve-load
(benchmarks/serve) sends them; it compares each answer with its case's outputs."""
import json
import subprocess

import torch

from serve_harness import SERVE_LOAD, ServeProcess, StockModel, example, json_tensor

REQUESTS = 20_000
CHUNKS = 4
CONCURRENCY = 16


def test_twenty_thousand_requests_at_concurrency_16(tmp_path):
    stock = StockModel(example("gil_bound"))
    g = torch.Generator().manual_seed(2024)
    cases = []
    for _ in range(64):
        x = torch.randn(1, 8, generator=g)
        cases.append({"inputs": [json_tensor("x", x)], "outputs": [json_tensor("output__0", stock(x))]})
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(cases))
    with ServeProcess(["--model", "gil=" + example("gil_bound")]) as server:
        rss = [server.rss_kb()]
        summaries = []
        for chunk in range(CHUNKS):
            out = subprocess.run([SERVE_LOAD, "--target", "127.0.0.1:%d" % server.http_port, "--protocol", "http",
                                  "--model", "gil", "--cases", str(cases_file), "--requests",
                                  str(REQUESTS // CHUNKS), "--concurrency", str(CONCURRENCY)],
                                 capture_output=True, text=True, timeout=600)
            summary = json.loads(out.stdout)
            summaries.append(summary)
            rss.append(server.rss_kb())
            print("chunk %d: %d requests, %.0f/s, p50 %.2f ms, p99 %.2f ms, RSS %.1f MB"
                  % (chunk, summary["requests"], summary["throughput"], summary["p50_ms"], summary["p99_ms"],
                     rss[-1] / 1024))
            assert out.returncode == 0, out.stdout + out.stderr
            assert summary["errors"] == 0 and summary["mismatches"] == 0, summary
        total = sum(s["requests"] for s in summaries)
        assert total == REQUESTS
        assert sum(s["ok"] for s in summaries) == REQUESTS
        print("total: %d requests at concurrency %d on 2 interpreters, 0 errors; p50 %.2f-%.2f ms, p99 %.2f-%.2f ms "
              "per chunk; RSS %s MB" % (total, CONCURRENCY, min(s["p50_ms"] for s in summaries),
                                        max(s["p50_ms"] for s in summaries), min(s["p99_ms"] for s in summaries),
                                        max(s["p99_ms"] for s in summaries),
                                        " -> ".join("%.1f" % (k / 1024) for k in rss)))
        # Flat: after the first chunk (warm-up: connection threads, allocator pools), the
        # resident size moves by less than 16 MB over 15,000 more requests.
        assert max(rss[1:]) - min(rss[1:]) < 16 * 1024, rss
