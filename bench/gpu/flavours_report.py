#!/usr/bin/env python3
"""Issue 19's report: raw files of plan runs (gpu_benchmark.py --plan bench/gpu/plans/issue19-*.json) turned into one
result per machine kind (H100, H200, ...: rows of different kinds are never mixed), each judging the issue's targets
on the ordinary (vllm) flavour of the stand-in, page cache warm, engine defaults, median of at least 5:

  1.5B restore -> first token <= 1.0 s at sleep level 1 and <= 1.2 s at level 2; 8B <= 2.0 s at both levels;
  four restores at once <= 1.3x one alone (the slowest of the four against one restore of the same images);
  staging never re-reads what is already resident: a restore with the default staging reads no more than the same
  restore without it (what the restore command read, /proc/PID/io rchar, median against median) while the image was
  in the page cache;
  every restore answered with its own source's greedy completion.

Each run is judged on its own ("on every machine it ran on"); a machine kind meets a target when every run that
measured it does. Rows of the register flavour (what a server can add) and of levers (other restore environments)
are reported beside the judged ones. Uses aggregate.py's statistics and fastpath_report.py's chart.

Usage: flavours_report.py --out-dir bench/results [--date DATE] [--png] [--markdown FILE] [--device-seconds N]
       RAW.json [RAW.json ...]
Writes OUT_DIR/gpu-<kind>-flavours-<DATE>.json (and .png) per machine kind; --markdown writes README's GPU table.
"""
import argparse
import copy
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aggregate import save, summarize, trim  # noqa: E402
from fastpath_report import draw_phase_bars  # noqa: E402

MIN_N = 5
TIMING_TARGETS = [("qwen2-1.5b", 1, 1.0), ("qwen2-1.5b", 2, 1.2), ("llama-8b", 1, 2.0), ("llama-8b", 2, 2.0)]
PARALLEL_TARGET = ("qwen2-1.5b", 2, 4, 1.3)  # shape, level, replicas, limit of slowest / one alone
# Two restores of one image read alike to within ~40 KB (CPU dry run: 2.18-2.22 MB each without staging); staging a
# resident image read it all again (+12.86 MB for a 12.86 MB image). Slack: 4 MiB or 0.5% of the image, what a
# partly evicted image may legitimately need.
STAGING_SLACK_BYTES = 4 << 20
STAGING_SLACK_FRACTION = 0.005
SHAPE_NAMES = {"qwen2-1.5b": "1.5B", "llama-8b": "8B", "tiny": "tiny", "cpu": "CPU stand-in"}
KEEP = ("io", "resident_before", "criu_log", "stage_readers", "server_wake", "image_mappings", "env", "replicas",
        "slowest_phases")


def machine_kind(raw):
    m = raw.get("machine") or {}
    if m.get("gpu_kind"):
        return m["gpu_kind"]
    from gpu_benchmark import gpu_kind
    return gpu_kind(m.get("gpu"))


def rows_of(raw):
    """The plan scenarios of one raw run (those with a flavour), summarized; reps trimmed to what reports need."""
    rows = []
    for s in raw["scenarios"]:
        if "flavour" not in s or s["kind"] not in ("restore", "parallel", "cold-start", "warm-start", "snapshot"):
            continue
        reps = []
        for r in s["reps"]:
            t = copy.deepcopy(trim(r))  # summarize() adds to the phases: the raw run stays as it was
            t.update(copy.deepcopy({k: r[k] for k in KEEP if k in r}))
            if "restores" in r:
                t["restores"] = [copy.deepcopy(dict(trim(x), **{k: x[k] for k in KEEP if k in x}))
                                 for x in r["restores"]]
            if s["kind"] == "snapshot":
                t.update({k: r[k] for k in ("large_areas_after_gpu_checkpoint", "source_same_after_resume")
                          if k in r})
            reps.append(t)
        row = summarize(dict(s, reps=reps))
        row["run"] = raw["tag"]
        row["default_engine"] = not s.get("env_spec") and not s.get("args")
        row["ordinary_source"] = not s.get("source_env") and not s.get("server_args")
        rows.append(row)
    return rows


def find(rows, **want):
    for r in rows:
        if all(r.get(k) == v for k, v in want.items()):
            return r
    return None


def judged_row(rows, shape, level, flavour="vllm"):
    return find(rows, kind="restore", shape=shape, flavour=flavour, sleep_level=level, mode="warm",
                default_engine=True, ordinary_source=True)


def cold_start(rows, shape, flavour="vllm"):
    r = find(rows, kind="cold-start", shape=shape, flavour=flavour, ordinary_source=True)
    return r.get("median_s") if r else None


def completion_check(rows):
    """Every restore of the run against its own source: the ones that differed and the ones never compared."""
    differed, unchecked, n = [], [], 0
    for r in rows:
        if r["kind"] not in ("restore", "parallel"):
            continue
        for i, rep in enumerate(r["reps"]):
            for x in rep.get("restores") or [rep]:
                if x.get("error") and "same_completion" not in x:
                    continue  # a failed restore is an error of the run, not a completion
                if x.get("same_completion") is True:
                    n += 1
                elif x.get("same_completion") is False:
                    n += 1
                    differed.append(f"{r['id']} rep {i}")
                else:
                    unchecked.append(f"{r['id']} rep {i}")
    return {"restores_compared": n, "all_identical": n > 0 and not differed and not unchecked,
            "differed": differed, "not_compared": unchecked}


def timing_targets(rows):
    out = []
    for shape, level, limit in TIMING_TARGETS:
        t = {"target": f"{SHAPE_NAMES[shape]} level {level}: restore -> first token <= {limit} s (vllm flavour)",
             "shape": shape, "sleep_level": level, "limit_s": limit}
        row = judged_row(rows, shape, level)
        if row is None or not row.get("n"):
            out.append(dict(t, met=None, why="not measured in this run"))
            continue
        ph = row["phases_median_s"]
        t.update(row=row["id"], n=row["n"], median_s=row["median_s"], min_s=row["min_s"], max_s=row["max_s"],
                 phases_median_s=ph, largest_phase=max(ph, key=ph.get),
                 all_completions_identical=row.get("all_completions_identical"))
        cold = cold_start(rows, shape)
        if cold:
            t.update(cold_start_s=cold, ratio_cold_over_restore=cold / row["median_s"])
        server = judged_row(rows, shape, level, flavour="register")
        if server and server.get("n"):
            t["register_flavour_median_s"] = server["median_s"]
        t["levers"] = [{"row": r["id"], "env": r.get("env_spec"), "mode": r.get("mode"), "n": r["n"],
                        "median_s": r["median_s"], "delta_s": r["median_s"] - row["median_s"]}
                       for r in rows if r["kind"] == "restore" and r.get("n") and r["shape"] == shape
                       and r["flavour"] == "vllm" and r["sleep_level"] == level and r is not row
                       and r.get("mode") != "warm-stage"]
        if row["n"] < MIN_N:
            t.update(met=None, why=f"n={row['n']}, fewer than {MIN_N} repetitions")
        elif row.get("all_completions_identical") is None:
            t.update(met=None, why="no restore's completion was compared with its source's")
        elif row.get("all_completions_identical") is not True:
            t.update(met=False, why="a restore did not answer with its source's completion")
        else:
            t.update(met=row["median_s"] <= limit, missed_by_s=max(0.0, row["median_s"] - limit))
        out.append(t)
    return out


def parallel_rows(rows, shape, level, flavour="vllm"):
    return {r["replicas"]: r for r in rows if r["kind"] == "parallel" and r.get("shape") == shape
            and r.get("flavour") == flavour and r.get("sleep_level") == level and r["default_engine"]
            and r["ordinary_source"] and r.get("n")}


def parallel_target(rows):
    shape, level, count, limit = PARALLEL_TARGET
    t = {"target": f"{count} {SHAPE_NAMES[shape]} restores at once (level {level}): slowest <= {limit}x one alone",
         "shape": shape, "sleep_level": level, "replicas": count, "limit_ratio": limit}
    by_n = parallel_rows(rows, shape, level)
    one, many = by_n.get(1), by_n.get(count)
    t["by_replicas"] = {n: {"n": r["n"], "slowest_median_s": r["median_s"], "phases_median_s": r["phases_median_s"],
                            "ratio_to_one": r["median_s"] / one["median_s"] if one else None,
                            "all_completions_identical": r.get("all_completions_identical")}
                        for n, r in sorted(by_n.items())}
    if not one or not many:
        return dict(t, met=None, why="not measured in this run")
    ratio = many["median_s"] / one["median_s"]
    t.update(one_alone_median_s=one["median_s"], at_once_slowest_median_s=many["median_s"], ratio=ratio)
    if min(one["n"], many["n"]) < MIN_N:
        return dict(t, met=None, why=f"n={one['n']} alone and {many['n']} at once: fewer than {MIN_N}")
    same = [one.get("all_completions_identical"), many.get("all_completions_identical")]
    if False in same:
        return dict(t, met=False, why="a restore did not answer with its source's completion")
    if None in same:
        return dict(t, met=None, why="no restore's completion was compared with its source's")
    return dict(t, met=ratio <= limit)


def staging_targets(rows):
    """Per shape, flavour and level with default-staged restores: what they read beyond the same restore unstaged."""
    out = []
    for staged in rows:
        if staged["kind"] != "restore" or staged.get("mode") != "warm-stage" or not staged.get("n"):
            continue
        base = find(rows, kind="restore", shape=staged["shape"], flavour=staged["flavour"],
                    sleep_level=staged["sleep_level"], mode="warm", env_spec=staged.get("env_spec"),
                    source_env=staged.get("source_env"))
        t = {"target": f"{SHAPE_NAMES.get(staged['shape'], staged['shape'])} level {staged['sleep_level']}"
                       f" ({staged['flavour']}): staging re-reads nothing already in the page cache",
             "row": staged["id"], "baseline_row": base["id"] if base else None}
        rchar = [r["io"]["rchar"] for r in staged["reps"] if (r.get("io") or {}).get("rchar") is not None]
        base_rchar = [r["io"]["rchar"] for r in (base or {}).get("reps", [])
                      if (r.get("io") or {}).get("rchar") is not None]
        resident = [r["resident_before"]["image"] for r in staged["reps"] if "image" in (r.get("resident_before") or {})]
        if not rchar or not base_rchar or not resident:
            out.append(dict(t, met=None, why="no I/O counters or residency recorded for both rows"))
            continue
        image_bytes = resident[0]["total_bytes"]
        fraction = min(x["fraction"] or 0.0 for x in resident)
        extra = statistics.median(rchar) - statistics.median(base_rchar)
        allowed = max(STAGING_SLACK_BYTES, STAGING_SLACK_FRACTION * image_bytes)
        t.update(image_bytes=image_bytes, image_resident_fraction_before=fraction, staged_read_bytes=extra,
                 allowed_bytes=allowed, stage_phase_median_s=staged["phases_median_s"].get("stage"),
                 staged_median_s=staged["median_s"], unstaged_median_s=base["median_s"] if base.get("n") else None)
        if fraction < 0.99:
            t.update(met=None, why=f"only {fraction:.0%} of the image was in the page cache")
        else:
            t["met"] = extra <= allowed
        out.append(t)
    return out


def run_report(raw):
    rows = rows_of(raw)
    m = raw.get("machine") or {}
    images = {r["id"]: {"image_bytes": (r["reps"][0] if r["reps"] else {}).get("image_bytes"),
                        "snapshot_s": r.get("median_s"),
                        "large_areas_after_gpu_checkpoint": (r["reps"][0] if r["reps"] else {}).get(
                            "large_areas_after_gpu_checkpoint")}
              for r in rows if r["kind"] == "snapshot"}
    asleep = {s["id"]: s["asleep"] for s in raw["scenarios"] if s.get("asleep")}
    return {"tag": raw["tag"], "started_at": raw["started_at"], "finished_at": raw.get("finished_at"),
            "machine_kind": machine_kind(raw),
            "machine": {k: m.get(k) for k in ("gpu", "gpu_kind", "driver", "cuda_driver_api", "gpu_memory",
                                              "cpu_model", "cpus", "mem_total_kib", "uname", "thp", "torch",
                                              "transformers", "safetensors", "python", "criu", "java",
                                              "cli_aot_cache")},
            "plan": (raw.get("plan") or {}).get("description"),
            "targets": timing_targets(rows) + [parallel_target(rows)] + staging_targets(rows),
            "completions": completion_check(rows), "images": images, "asleep": asleep, "rows": rows,
            "errors": raw.get("errors", []), "skipped": raw.get("skipped", [])}


def verdicts(runs):
    """Per target: met when every run that measured it met it; None when no run judged it."""
    out = {}
    for run in runs:
        for t in run["targets"]:
            v = out.setdefault(t["target"], {"target": t["target"], "runs": {}})
            v["runs"][run["tag"]] = t.get("met")
    for v in out.values():
        judged = [x for x in v["runs"].values() if x is not None]
        v["met"] = all(judged) if judged else None
    return list(out.values())


def report(raws, date, device_seconds=None):
    """{machine kind: result}; a result holds only runs of its own kind."""
    by_kind = {}
    for raw in raws:
        by_kind.setdefault(machine_kind(raw), []).append(run_report(raw))
    out = {}
    for kind, runs in by_kind.items():
        runs.sort(key=lambda r: r["started_at"])
        out[kind] = {
            "benchmark": "vllmsnap issue 19: a server we did not write (the stand-in's vllm flavour) against one that"
                         " registers its weights (register flavour), levels 1 and 2, N restores at once",
            "machine_kind": kind, "date": date, "device_seconds_used": device_seconds,
            "machine": dict(runs[0]["machine"], note="the first run's; each run's own machine is in runs[].machine"),
            "method": {
                "flavours": "vllm: sleeps as vLLM's CuMemAllocator (level 1: weights in pinned host memory,"
                            " cudaHostAlloc through torch; level 2: weights reloaded by the ordinary loader);"
                            " register: the stand-in's registered-mmap wake and heap trim",
                "restore": "the engine's own measure: request accepted -> first token (vllmsnap restore)",
                "warm": "page cache as the dump left it (image, weights, libraries), --stage-readers 0",
                "warm-stage": "as warm with the restore's default staging",
                "judged": "vllm flavour, warm, no extra environment, median of >= 5 per run; a kind meets a target"
                          " when every run of that kind that measured it does",
                "completions": "every restore's 16-token greedy completion compared with its own source's",
                "staged_read_bytes": "median rchar of the staged restore command minus that of the unstaged one"},
            "targets": verdicts(runs), "runs": runs}
    return out


def markdown(results):
    """README's GPU table: one block of rows per machine kind, the vllm flavour's judged rows first."""
    lines = ["| machine | model, sleep level | cold start → first token | restore → first token, median (min–max), n"
             " | target | cold / restore | register flavour (what a server can add) | largest phases (s, medians) |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, res in sorted(results.items()):
        for run in res["runs"]:
            m = run["machine"]
            where = f"{kind} ({run['tag']}, driver {m.get('driver')})"
            for t in run["targets"]:
                if "limit_s" not in t or t.get("median_s") is None:
                    continue
                verdict = "—" if t["met"] is None else ("**met**" if t["met"] else
                                                         f"missed by {t['missed_by_s']:.2f} s")
                ph = sorted(t["phases_median_s"].items(), key=lambda kv: -kv[1])[:3]
                lines.append(
                    f"| {where} | {SHAPE_NAMES[t['shape']]}, level {t['sleep_level']} | "
                    f"{_s(t.get('cold_start_s'))} | **{t['median_s']:.2f} s** ({t['min_s']:.2f}–{t['max_s']:.2f}),"
                    f" n={t['n']} | ≤ {t['limit_s']} s: {verdict} | "
                    f"{_x(t.get('ratio_cold_over_restore'))} | {_s(t.get('register_flavour_median_s'))} | "
                    + ", ".join(f"{k} {v:.2f}" for k, v in ph) + " |")
            p = next((t for t in run["targets"] if "limit_ratio" in t), None)
            if p and p.get("by_replicas"):
                each = "; ".join(f"{n} at once {r['slowest_median_s']:.2f} s"
                                 + (f" ({r['ratio_to_one']:.2f}x)" if r.get("ratio_to_one") and n != 1 else "")
                                 for n, r in p["by_replicas"].items())
                verdict = "—" if p["met"] is None else ("**met**" if p["met"] else "missed")
                lines.append(f"| {where} | 1.5B, level {p['sleep_level']}, N restores at once (slowest) | — | {each}"
                             f" | ≤ {p['limit_ratio']}x at {p['replicas']}: {verdict} | — | — | — |")
    return "\n".join(lines) + "\n"


def _s(v):
    return f"{v:.2f} s" if isinstance(v, (int, float)) else "—"


def _x(v):
    return f"{v:.0f}x" if isinstance(v, (int, float)) else "—"


def chart(result, png):
    rows = []
    for run in result["runs"]:
        for r in run["rows"]:
            if r["kind"] in ("restore", "parallel") and r.get("n"):
                rows.append((run["tag"], r))
    rows.sort(key=lambda x: (x[1]["shape"] == "qwen2-1.5b", x[1].get("flavour") != "vllm", -x[1]["median_s"]))
    labels = [f"{tag} {r['shape']} {r['flavour']} L{r['sleep_level']} "
              + (f"x{r['replicas']} at once" if r["kind"] == "parallel" else r.get("name") or r.get("mode"))
              + (f" [{r['env_spec']}]" if r.get("env_spec") else "") for tag, r in rows]
    m = result["runs"][0]["machine"]
    draw_phase_bars(png, [r for _, r in rows], labels, sorted({lim for _, _, lim in TIMING_TARGETS}),
                    f"Restore to first token by stand-in flavour and sleep level ({m.get('gpu')}, driver "
                    f"{m.get('driver')}, {result['date']})\ndotted: targets 1.0, 1.2 and 2.0 s (vllm flavour)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out-dir", required=True)
    p.add_argument("--date", required=True, help="the runs' date, part of the file names (YYYY-MM-DD)")
    p.add_argument("--png", action="store_true", help="draw a chart per machine kind (needs matplotlib)")
    p.add_argument("--markdown", help="write README's GPU table here")
    p.add_argument("--device-seconds", type=float)
    p.add_argument("raw", nargs="+")
    a = p.parse_args()
    results = report([json.load(open(f)) for f in a.raw], a.date, a.device_seconds)
    for kind, result in results.items():
        stem = os.path.join(a.out_dir, f"gpu-{kind.lower()}-flavours-{a.date}")
        save(result, stem + ".json", stem + ".png" if a.png else None, chart)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(markdown(results))


if __name__ == "__main__":
    main()
