#!/usr/bin/env bash
# CPU benchmark: cold start → first token vs restore → first token of the 2 GiB stand-in vLLM server, in one run.
# For each entry of $RUNS (default "2 0 0:copy 0:lazy": sleep level; ":copy" = restore copying memory
# (VLLMSNAP_MAP_FILL=off) instead of mapping it from the image, the default; ":lazy" = restore with criu lazy-pages):
# start cold, snapshot (source stopped), restore; then writes
# bench/results/cpu-<UTC date>.json with every run, the machine and the versions. Target: restore >= 5x faster.
# The weights file is created (and so in the page cache) before any timing, for cold start and restore alike.
# Needs root. Usage: bench/cpu/run.sh   (env: RUNS, WEIGHTS_MIB=2048, KV_MIB=512)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
hack/install-criu.sh
[ -n "$(ls target/vllmsnap-*-cli.jar 2>/dev/null)" ] || ./mvnw -q package -DskipTests
stamp=$(date -u +%Y%m%dT%H%M%SZ)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
for run in ${RUNS:-2 0 0:copy 0:lazy}; do
  level=${run%%:*}
  lazy=(); [ "${run#*:}" = lazy ] && lazy=(--lazy-pages)
  fill=on; [ "${run#*:}" = copy ] && fill=off
  i=$((i + 1))
  VLLMSNAP_MAP_FILL=$fill hack/vllmsnap demo --sleep-level "$level" "${lazy[@]}" --weights-mib "${WEIGHTS_MIB:-2048}" \
    --kv-mib "${KV_MIB:-512}" --json "$tmp/run-$i.json"
  python3 -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d["mapFill"]=sys.argv[2]=="on"; json.dump(d,open(p,"w"))' \
    "$tmp/run-$i.json" "$fill"
done
out="bench/results/cpu-$stamp.json"
python3 - "$out" "$tmp"/run-*.json <<'PY'
import json, platform, subprocess, sys
runs = [json.load(open(p)) for p in sys.argv[2:]]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
load = open("/proc/loadavg").read().split()[:3]
doc = {"benchmark": "cpu stand-in: cold start vs restore to first token", "cpuModel": cpu,
       "loadAverageAtEnd": load, "python": platform.python_version(),
       "bestSpeedup": max(r["speedup"] for r in runs), "targetSpeedup": 5, "runs": runs}
json.dump(doc, open(sys.argv[1], "w"), indent=2)
for r in runs:
    how = " lazy" if r.get("lazyPages") else ("" if r.get("mapFill") else " copied")
    print(f"sleep level {r['sleepLevel']}{how}: cold {r['coldStartToFirstTokenSeconds']:.2f} s, restore "
          f"{r['restoreToFirstTokenSeconds']:.2f} s, {r['speedup']:.1f}x, image {r['imageBytes'] / 2**20:.0f} MiB")
print("written", sys.argv[1])
PY
