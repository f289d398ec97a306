#!/usr/bin/python3
"""Draws docs/img/dashboard-sample.png: the vllmsnap dashboard's queries evaluated on one Prometheus scrape of a real
run (target/dashboard-sample/metrics.txt, written by the DashboardSample run; `make dashboard-sample`).

Not a Grafana screenshot: a single scrape has no time axis, so each time-series panel becomes a bar chart of the same
query's value at the end of the run. histogram_quantile is computed the way Prometheus does (linear interpolation
inside the bucket that holds the rank)."""
import math
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SAMPLE = Path(sys.argv[1] if len(sys.argv) > 1 else "target/dashboard-sample")
OUT = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/img/dashboard-sample.png")
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*?),?\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"')


def parse(text):
    series = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line.strip())
        if not m:
            raise SystemExit(f"cannot parse scrape line: {line}")
        labels = dict(LABEL.findall(m.group(2) or ""))
        series.append((m.group(1), labels, float(m.group(3))))
    return series


def select(series, name, **match):
    return [(l, v) for n, l, v in series if n == name and all(l.get(k) == want for k, want in match.items())]


def histogram_quantile(q, buckets):
    """buckets: list of (le, cumulative count), le may be +Inf."""
    buckets = sorted(buckets, key=lambda b: b[0])
    total = buckets[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-12)
        prev_le, prev_count = le, count
    return buckets[-1][0]


def restore_buckets(series, phase):
    acc = defaultdict(float)
    for labels, v in select(series, "vllmsnap_restore_duration_seconds_bucket", phase=phase, result="success"):
        acc[float(labels["le"].replace("+Inf", "inf"))] += v
    return list(acc.items())


def main():
    series = parse((SAMPLE / "metrics.txt").read_text())
    cold = [float(x) for x in (SAMPLE / "cold-start-seconds.txt").read_text().split()]
    total = restore_buckets(series, "total")
    quantiles = {f"p{int(q * 100)}": histogram_quantile(q, total) for q in (0.5, 0.9, 0.99)}
    count = sum(v for _, v in select(series, "vllmsnap_restore_duration_seconds_count", phase="total"))

    phase_mean = {}
    for labels, s in select(series, "vllmsnap_restore_duration_seconds_sum", result="success"):
        if labels["phase"] == "total":
            continue
        c = sum(v for _, v in select(series, "vllmsnap_restore_duration_seconds_count", phase=labels["phase"], result="success"))
        phase_mean[labels["phase"]] = s / c
    order = ["prepare", "stage", "restore", "gpu-restore", "wake", "ready", "first-token"]
    phase_mean = dict(sorted(phase_mean.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    restores = defaultdict(float)
    for labels, v in select(series, "vllmsnap_restores_total"):
        restores[f'{labels["result"]} ({labels["path"]})'] += v
    size = sum(v for _, v in select(series, "vllmsnap_snapshot_size_bytes_sum")) / max(
        sum(v for _, v in select(series, "vllmsnap_snapshot_size_bytes_count")), 1)
    snap_total = sum(v for _, v in select(series, "vllmsnap_snapshot_duration_seconds_sum", phase="total"))

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    fig.suptitle("vllmsnap dashboard queries on a real run (CPU stand-in server, CRIU 4.2.1, no GPU)", fontsize=14)

    ax = axes[0][0]
    ax.bar(list(quantiles), list(quantiles.values()), color=["#3274d9", "#ff9830", "#e02f44"])
    ax.set_title(f"Restore latency, request to first token ({int(count)} restores)")
    ax.set_ylabel("seconds")
    for i, v in enumerate(quantiles.values()):
        ax.text(i, v, f"{v:.2f} s", ha="center", va="bottom")

    ax = axes[0][1]
    bottom = 0.0
    colors = plt.cm.tab10.colors
    for i, (phase, mean) in enumerate(phase_mean.items()):
        ax.bar(["mean restore"], [mean], bottom=bottom, label=f"{phase} {mean * 1000:.0f} ms", color=colors[i % 10])
        bottom += mean
    ax.set_title("Restore latency by phase (mean, stacked)")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=8, loc="upper right")

    ax = axes[0][2]
    ax.bar(list(restores), list(restores.values()), color="#73bf69")
    ax.set_title("Restores by result (path)")
    ax.set_ylabel("restores in the run")

    ax = axes[1][0]
    cold_median = statistics.median(cold)
    ax.barh(["cold start\n(median of %d)" % len(cold), "restore p50"], [cold_median, quantiles["p50"]],
            color=["#8e8e8e", "#3274d9"])
    ax.set_title(f"Cold start vs restore: {cold_median / quantiles['p50']:.1f}x faster")
    ax.set_xlabel("seconds to first token")

    ax = axes[1][1]
    ax.bar(["mean image size"], [size / 2 ** 20], color="#b877d9")
    ax.set_title(f"Snapshot size (snapshot took {snap_total:.2f} s)")
    ax.set_ylabel("MiB")

    ax = axes[1][2]
    ax.axis("off")
    ax.text(0, 0.95, "What this is", fontsize=12, weight="bold", va="top")
    ax.text(0, 0.82,
            "The dashboard's PromQL evaluated by\n"
            "hack/render-dashboard-sample.py on one /q/metrics-format\n"
            "scrape written by the DashboardSample run: real CRIU\n"
            "snapshots and restores of the CPU stand-in server\n"
            "(256 MiB weights, 64 MiB KV pool, sleep level 2),\n"
            "recorded with the operator's metric names and\n"
            "histogram buckets. Cold starts measured in the same run.\n"
            "One scrape has no time axis, so time-series panels are\n"
            "drawn as bars. Agent panels (queue depth, storage) need\n"
            "a running agent and are not shown. Not Grafana.",
            fontsize=9, va="top", family="monospace")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=80)
    print(f"render-dashboard-sample: wrote {OUT} (restore p50 {quantiles['p50']:.2f} s, cold start {cold_median:.2f} s)")


if __name__ == "__main__":
    main()
