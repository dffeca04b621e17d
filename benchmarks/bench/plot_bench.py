"""Plots pyfleet-bench's JSON: one row per package; left, throughput against threads for
each strategy; right, the memory (PSS, RSS as an outline) of each strategy's whole setup
at each thread count.

    /usr/bin/python3 benchmarks/bench/plot_bench.py results.json results.png

Needs Debian's python3-matplotlib (scripts/deps installs it).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt  # noqa: E402

STRATEGIES = ["multi_python", "one_python", "torchscript", "python_threads", "python_processes"]
COLORS = {
    "multi_python": "tab:blue",
    "one_python": "tab:orange",
    "torchscript": "tab:green",
    "python_threads": "tab:red",
    "python_processes": "tab:purple",
}


def plot(data, out):
    results = data["results"]
    packages = list(dict.fromkeys(r["package"] for r in results))
    if not packages:
        raise ValueError("no results to plot")
    strategies = [s for s in STRATEGIES if any(r["strategy"] == s for r in results)]
    strategies += sorted({r["strategy"] for r in results} - set(strategies))
    fig, axes = plt.subplots(len(packages), 2, figsize=(12, 3.6 * len(packages)), squeeze=False)
    for row, package in enumerate(packages):
        rows = [r for r in results if r["package"] == package]
        threads = sorted({r["threads"] for r in rows})
        ax = axes[row][0]
        for s in strategies:
            pts = sorted((r["threads"], r["items_per_s"]) for r in rows if r["strategy"] == s)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s,
                        color=COLORS.get(s))
        ax.set_title(f"{package}: throughput")
        ax.set_xlabel("threads (or processes)")
        ax.set_ylabel("items/s")
        ax.set_xticks(threads)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

        ax = axes[row][1]
        present = [s for s in strategies if any(r["strategy"] == s for r in rows)]
        width = 0.8 / max(1, len(present))
        for i, s in enumerate(present):
            by_t = {r["threads"]: r for r in rows if r["strategy"] == s}
            xs = [k + (i - (len(present) - 1) / 2) * width for k in range(len(threads))]
            pss = [by_t[t]["pss_mb"] if t in by_t else 0 for t in threads]
            rss = [by_t[t]["rss_mb"] if t in by_t else 0 for t in threads]
            ax.bar(xs, rss, width, fill=False, edgecolor=COLORS.get(s), linewidth=0.8)
            ax.bar(xs, pss, width, color=COLORS.get(s), label=s)
        ax.set_title(f"{package}: memory of the whole setup (PSS filled, RSS outline)")
        ax.set_xticks(range(len(threads)))
        ax.set_xticklabels([str(t) for t in threads])
        ax.set_xlabel("threads (or processes)")
        ax.set_ylabel("MB")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    m = data.get("machine", {})
    fig.suptitle(f"pyfleet-bench, {m.get('cores', '?')} cores, {m.get('cpu_model', '')}, "
                 f"torch {m.get('torch_version', '?')}, python {m.get('python_version', '?')}, "
                 f"{m.get('date', '')}; intra-op threads 1", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: plot_bench.py RESULTS.json OUT.png\n")
        return 2
    with open(argv[1]) as f:
        data = json.load(f)
    plot(data, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
