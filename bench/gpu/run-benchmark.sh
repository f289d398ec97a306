#!/usr/bin/env bash
# The GPU benchmark of issue 8, in one command on a bare GPU machine (root, python3 with torch, transformers and
# safetensors; no Java, no network): run from the bundle that bench/gpu/build-bundle.sh builds (this script lies
# at its top). Usage: run-benchmark.sh OUT_DIR [gpu_benchmark.py options, e.g. --scenarios modes --tag call1]
# Writes OUT_DIR/raw-<tag>.json (rewritten after every step) and OUT_DIR/logs-<tag>.tar.gz (every command's log).
# bench/gpu/aggregate.py turns raw files into bench/results/gpu-h100-<date>.json and its chart.
set -x
B="$(cd "$(dirname "$0")" && pwd)"
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
TAG=run
prev=
for a in "$@"; do [ "$prev" = --tag ] && TAG="$a"; prev="$a"; done
export PYTHONUNBUFFERED=1
timeout "${BENCH_TIMEOUT:-900}" python3 "$B/gpu_benchmark.py" --bundle "$B" --out "$OUT" "$@" 2>&1 | tee "$OUT/console-$TAG.txt"
rc=${PIPESTATUS[0]}
(cd "$OUT" && tar czf "logs-$TAG.tar.gz" logs && rm -rf logs)
exit "$rc"
