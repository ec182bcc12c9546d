#!/usr/bin/env python3
"""Plots the figure JSONs of bench/results/experiments/ as PNGs in docs/img/ (matplotlib, Debian's
python3-matplotlib):

  fig3*.json  request throughput against the system prompt's length, one line per scheme
  fig45*.json Fig. 4: request throughput against the request rate; Fig. 5: s/token and TTFT p99
              against the request rate; one line per scheme and cloud-prompt length

    python3 bench/experiments/plot.py [bench/results/experiments/fig3a.json ...]
"""
import collections
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "img"


def lines(points, x, y, by):
    out = collections.defaultdict(list)
    for p in points:
        if p.get(y) is not None:
            out[tuple(p[k] for k in by)].append((p[x], p[y]))
    return {k: sorted(v) for k, v in out.items()}


def plot(ax, points, x, y, by, xlabel, ylabel, logx=False):
    for key, xy in lines(points, x, y, by).items():
        ax.plot([a for a, _ in xy], [b for _, b in xy], marker="o", label=" ".join(map(str, key)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log", base=2)
    ax.grid(True, alpha=0.3)
    ax.legend()


def main():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = [pathlib.Path(f) for f in sys.argv[1:]] or sorted(
        (ROOT / "bench" / "results" / "experiments").glob("fig*.json"))
    IMG.mkdir(parents=True, exist_ok=True)
    for f in files:
        fig_json = json.loads(f.read_text())
        pts, name = fig_json["points"], fig_json["figure"]
        if name.startswith("fig3"):
            fig, ax = plt.subplots(figsize=(6, 4))
            plot(ax, pts, "system_prompt_len", "request_throughput", ["scheme"],
                 "system prompt (tokens)", "throughput (req/s)", logx=True)
            out = IMG / f"{name}.png"
        else:
            fig, axes = plt.subplots(1, 3, figsize=(15, 4))
            plot(axes[0], pts, "request_rate", "request_throughput",
                 ["scheme", "system_prompt_len"], "request rate (req/s)", "throughput (req/s)")
            plot(axes[1], pts, "request_rate", "normalised_latency_s_per_token",
                 ["scheme", "system_prompt_len"], "request rate (req/s)", "latency (s/token)")
            plot(axes[2], pts, "request_rate", "p99_ttft_ms", ["scheme", "system_prompt_len"],
                 "request rate (req/s)", "TTFT p99 (ms)")
            out = IMG / f"{name}.png"
        fig.tight_layout()
        fig.savefig(out, dpi=120)
        plt.close(fig)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
