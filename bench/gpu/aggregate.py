#!/usr/bin/env python3
"""Merges the raw files of GPU benchmark runs (run-benchmark.sh, one per device call) into one result file with
min/median per scenario, the cold/restore ratios, the targets of issue 8, and a chart (bars per scenario, phases
stacked). The chart needs matplotlib (Debian: python3-matplotlib); the JSON needs only the standard library.

Usage: aggregate.py --out bench/results/gpu-h100-DATE.json [--png FILE.png] [--device-seconds N] RAW.json...
"""
import argparse
import json
import statistics

RESTORE_PHASES = ["prepare", "stage", "restore", "gpu-restore", "wake", "ready", "first-token", "other"]
SNAPSHOT_PHASES = ["prepare", "gpu-checkpoint", "dump", "finalize"]
COLD_PHASES = ["import", "cuda-init", "load-weights", "kv-alloc", "warm-up", "launch+http", "first-token"]
KEEP = ("total_s", "wall_s", "phases", "same_completion", "image_bytes", "image_files", "prestage_s",
        "prestage_bytes", "how", "cold_page_cache", "leave_running", "each_s", "error", "rc", "source_for_level",
        "server_timings", "completion", "standin_calls", "image_mappings")

TARGETS = [
    # (name, shape, kind, limit)
    ("qwen2-1.5b restore to first token, best mode", "qwen2-1.5b", "best", 2.0),
    ("qwen2-1.5b restore at least 10x faster than cold start", "qwen2-1.5b", "ratio", 10.0),
    ("llama-8b restore to first token, best mode", "llama-8b", "best", 4.0),
    ("4 parallel restores of qwen2-1.5b within 1.3x of one", "qwen2-1.5b", "parallel", 1.3),
]


def cold_phases(rep):
    p = rep.get("phases") or {}
    named = {"import": p.get("server_import", 0) + p.get("server_python_start", 0),
             "cuda-init": p.get("server_cuda_init", 0), "load-weights": p.get("server_load_weights", 0),
             "kv-alloc": p.get("server_kv_alloc", 0), "warm-up": p.get("server_warmup", 0)}
    named["launch+http"] = max(0.0, p.get("launch_to_health", 0) - sum(named.values()))
    named["first-token"] = p.get("first_token", 0)
    return named


def trim(rep):
    out = {k: rep[k] for k in KEEP if k in rep}
    if "output" in rep:
        out["output"] = rep["output"][-1500:]
    return out


def summarize(s):
    reps = [r for r in s["reps"] if isinstance(r.get("total_s"), (int, float))]
    s["n"] = len(reps)
    if s["kind"] == "cold-start":
        for r in s["reps"]:
            r["phases"] = cold_phases(r)
    if s["kind"] == "restore":
        # Time inside the engine's measure that no phase names: before "prepare" existed (results of 2026-11-23) the
        # checks, manifest read and cold-JVM class loading before criu; now only the instants between phases.
        for r in reps:
            ph = r.get("phases") or {}
            if ph and "other" not in ph:
                ph["other"] = max(0.0, r["total_s"] - sum(ph.values()))
    if reps:
        tot = [r["total_s"] for r in reps]
        s["min_s"], s["median_s"], s["max_s"] = min(tot), statistics.median(tot), max(tot)
        keys = []
        for r in reps:
            keys += [k for k in (r.get("phases") or {}) if k not in keys]
        s["phases_median_s"] = {k: statistics.median([(r.get("phases") or {}).get(k, 0.0) for r in reps])
                                for k in keys}
        sizes = [r["image_bytes"] for r in reps if r.get("image_bytes")]
        if sizes:
            s["image_bytes_median"] = statistics.median(sizes)
        pre = [r["prestage_s"] for r in reps if r.get("prestage_s") is not None]
        if pre:
            s["prestage_median_s"] = statistics.median(pre)
        same = [r.get("same_completion") for r in reps if r.get("same_completion") is not None]
        if same:
            s["all_completions_identical"] = all(same)
    return s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--png")
    p.add_argument("--date", default="2026-11-23")
    p.add_argument("--device-seconds", type=float)
    p.add_argument("raw", nargs="+")
    a = p.parse_args()
    runs, scenarios, skipped, errors, builds = [], {}, [], [], []
    machine = {}
    for f in a.raw:
        r = json.load(open(f))
        machine = machine or r["machine"]
        runs.append({"tag": r["tag"], "started_at": r["started_at"], "finished_at": r.get("finished_at"),
                     "scenarios": r["config"]["scenarios"], "reps": r["config"]["reps"],
                     "kv_bytes_1p5b": r["config"].get("kv_bytes_1p5b"), "budget_s": r["config"]["budget_s"]})
        skipped += [dict(x, run=r["tag"]) for x in r["skipped"]]
        errors += [dict(x, run=r["tag"]) for x in r["errors"]]
        builds += [{"shape": b["shape"], "seconds": b["total_s"], "phases": b["phases"]} for b in r.get("weight_builds", [])]
        for s in r["scenarios"]:
            if "/lever-" in s["id"] or s["kind"] == "facts":
                continue  # issue 9's levers and memory facts: fastpath_report.py reports them
            t = scenarios.setdefault(s["id"], {k: v for k, v in s.items() if k != "reps"} | {"reps": [], "runs": []})
            t["runs"].append(r["tag"])
            for rep in s["reps"]:
                if s["kind"] == "parallel":
                    rep = dict(rep, restores=[trim(x) for x in rep.get("restores", [])])
                    t["reps"].append({k: v for k, v in rep.items() if k in KEEP or k == "restores"})
                elif s["kind"] in ("mps",):
                    t["reps"].append(rep)
                else:
                    t["reps"].append(trim(rep))
    # Derived: every single restore of the one-by-one series is a level-2 restore with the page cache fully warm
    # (image, weights and the server's own libraries), one at a time on an idle GPU.
    for sid, s in list(scenarios.items()):
        if s["kind"] == "parallel" and sid.endswith("restore-4-one-by-one"):
            shape = s["shape"]
            scenarios[f"{shape}/restore-l2-warm"] = {
                "id": f"{shape}/restore-l2-warm", "shape": shape, "kind": "restore", "sleep_level": 2, "how": "warm",
                "derived_from": sid, "runs": s["runs"],
                "note": "each restore of the one-by-one series: nothing dropped, the image, weights and the server's"
                        " libraries in the page cache (a node that ran the server before)",
                "reps": [x for rep in s["reps"] for x in rep.get("restores", []) if x.get("total_s") is not None]}
    for s in scenarios.values():
        summarize(s)

    cold = {s["shape"]: s["median_s"] for s in scenarios.values() if s["kind"] == "cold-start" and s.get("n")}
    ratios = []
    for s in scenarios.values():
        if s["kind"] == "restore" and s.get("n") and s["shape"] in cold:
            ratios.append({"shape": s["shape"], "scenario": s["id"], "sleep_level": s["sleep_level"], "how": s["how"],
                           "n": s["n"], "cold_median_s": cold[s["shape"]], "restore_median_s": s["median_s"],
                           "ratio": cold[s["shape"]] / s["median_s"]})
    best = {}
    for x in ratios:
        if x["shape"] not in best or x["restore_median_s"] < best[x["shape"]]["restore_median_s"]:
            best[x["shape"]] = x
    targets = []
    for name, shape, kind, limit in TARGETS:
        t = {"target": name, "limit": limit}
        if kind in ("best", "ratio") and shape in best:
            b = best[shape]
            sc = scenarios[b["scenario"]]
            phases = sc["phases_median_s"]
            worst = max(phases, key=phases.get)
            t.update(best_scenario=b["scenario"], phases_median_s=phases, held_back_by=worst,
                     held_back_by_s=phases[worst])
            if kind == "best":
                t.update(measured_s=b["restore_median_s"], met=b["restore_median_s"] <= limit,
                         missed_by_s=max(0.0, b["restore_median_s"] - limit))
            else:
                t.update(measured_ratio=b["ratio"], met=b["ratio"] >= limit,
                         restore_needed_s=b["cold_median_s"] / limit,
                         missed_by_s=max(0.0, b["restore_median_s"] - b["cold_median_s"] / limit))
        elif kind == "parallel":
            par = scenarios.get(f"{shape}/restore-4-at-once")
            one = scenarios.get(f"{shape}/restore-l2-warm")
            if par and one and par.get("n") and one.get("n"):
                ratio = par["median_s"] / one["median_s"]
                t.update(measured_ratio=ratio, met=ratio <= limit, four_at_once_median_s=par["median_s"],
                         one_median_s=one["median_s"], four_one_by_one_median_s=scenarios[
                             f"{shape}/restore-4-one-by-one"]["median_s"],
                         phases_at_once_median_s=par["phases_median_s"], phases_one_median_s=one["phases_median_s"])
        else:
            t.update(met=None, why="not measured")
        targets.append(t)

    result = {"benchmark": "vllmsnap GPU benchmark (issue 8)", "date": a.date, "machine": machine,
              "device_seconds_used": a.device_seconds, "runs": runs, "weight_builds": builds,
              "method": {
                  "cold_start": "page cache dropped (echo 3 > /proc/sys/vm/drop_caches), then vllmsnap run of the"
                                " stand-in -> /health -> first token of /v1/completions (max_tokens 1)",
                  "restore": "the engine's own measure: request accepted -> first token (vllmsnap restore)",
                  "cold": "page cache dropped; the restore's stage phase reads the image (4 readers); a level-2 wake"
                          " re-reads the weights from disk",
                  "prestage": "page cache dropped, then image (and for level 2 the weights) read ahead with 8"
                              " readers (prestage_s, not part of the restore); restore with --stage-readers 0. The"
                              " server's libraries (torch, CUDA) stay cold",
                  "prestage-lazy": "as prestage, restore with --lazy-pages (criu lazy-pages daemon)",
                  "warm": "nothing dropped: image, weights and libraries in the page cache",
                  "snapshot": "prepare + gpu-checkpoint + dump + finalize from the image's manifest; all but the"
                              " last snapshot of a source were taken with --leave-running (their resume-source"
                              " phase is left out)",
                  "qwen2-1.5b KV pool": "fixed at 4 GiB (--kv-bytes) instead of 0.3 of the GPU, so level 0/1"
                                        " images stay within the device time; llama-8b uses 0.9 of free memory",
                  "completions": "every restore's greedy 16-token completion compared with the source's"},
              "scenarios": list(scenarios.values()), "cold_start_median_s": cold, "ratios": ratios,
              "targets": targets, "skipped": skipped, "errors": errors}
    save(result, a.out, a.png, chart)


def save(result, out, png, draw):
    """Writes the result, draws its chart when asked, and prints each target on one line."""
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    if png:
        draw(result, png)
    for t in result["targets"]:
        print(json.dumps({k: v for k, v in t.items() if not isinstance(v, dict)}))


PHASE_COLORS = {"stage": "#8c564b", "restore": "#1f77b4", "gpu-restore": "#ff7f0e", "wake": "#2ca02c",
                "ready": "#7f7f7f", "first-token": "#d62728", "import": "#9467bd", "cuda-init": "#c5b0d5",
                "load-weights": "#17becf", "kv-alloc": "#bcbd22", "warm-up": "#e377c2", "launch+http": "#c7c7c7",
                "prepare": "#aec7e8", "other": "#dbdb8d", "gpu-checkpoint": "#ffbb78", "dump": "#98df8a",
                "finalize": "#ff9896"}


def chart(result, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = PHASE_COLORS
    sc = [s for s in result["scenarios"] if s.get("n")]
    order = {"cold-start": 0, "restore": 1, "parallel": 2}
    ttft = sorted([s for s in sc if s["kind"] in order], key=lambda s: (s["shape"] != "qwen2-1.5b", order[s["kind"]],
                                                                        s.get("median_s", 0)))
    ttft = [s for s in ttft if not s["id"].endswith("one-by-one")]
    snaps = [s for s in sc if s["kind"] == "snapshot"]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 11), gridspec_kw={"height_ratios": [len(ttft), len(snaps) + 1]})

    def bars(ax, items, phases_of, title):
        seen = set()
        for i, s in enumerate(items):
            left = 0.0
            ph = s["phases_median_s"]
            for k in phases_of(s):
                v = ph.get(k, 0.0)
                if v <= 0:
                    continue
                ax.barh(i, v, left=left, color=colors.get(k, "#333333"), label=None if k in seen else k,
                        edgecolor="white", linewidth=0.4)
                seen.add(k)
                left += v
            ax.text(max(left, s["median_s"]) + 0.2, i, f"{s['median_s']:.2f} s (min {s['min_s']:.2f}, n={s['n']})",
                    va="center", fontsize=8)
        ax.set_yticks(range(len(items)))
        ax.set_yticklabels([label(s) for s in items], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("seconds (median of the repetitions; phases: median of each)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="lower right", ncol=2)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(0, max(s["median_s"] for s in items) * 1.35)

    def phases_of(s):
        if s["kind"] == "cold-start":
            return COLD_PHASES
        return RESTORE_PHASES

    m = result["machine"]
    bars(ax1, ttft, phases_of, f"Time to first token: cold start vs restore ({m.get('gpu')}, driver "
                               f"{m.get('driver')}, {result['date']})")
    bars(ax2, snaps, lambda s: SNAPSHOT_PHASES, "Snapshot time (image size in the label)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def label(s):
    if s["kind"] == "cold-start":
        return f"{s['shape']} cold start"
    if s["kind"] == "snapshot":
        gib = s.get("image_bytes_median", 0) / 2 ** 30
        extra = " (4 sources)" if "parallel" in s["id"] else " (CRIU's CUDA plugin)" if "criu-plugin" in s["id"] else ""
        return f"{s['shape']} level {s['sleep_level']}{extra}, {gib:.1f} GiB"
    if s["kind"] == "parallel":
        return f"{s['shape']} L2 4 at once (slowest)"
    return f"{s['shape']} restore L{s['sleep_level']} {s['how']}"


if __name__ == "__main__":
    main()
