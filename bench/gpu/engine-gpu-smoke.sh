#!/usr/bin/env bash
# One snapshot and restore of the GPU stand-in through the local CLI from the bundle: the engine, the bundled CRIU
# and the FFM GPU path together, on a GPU machine. The greedy completion after restore must equal the one before.
# Usage: engine-gpu-smoke.sh BUNDLE_DIR OUT_DIR [SHAPE]. Writes OUT/engine-smoke.json; every step has a timeout.
# SHAPE cpu runs the CPU stand-in instead (to try the script without a GPU; its answers depend on a request
# counter, so same_completion is false there by design).
set -x
B="$(cd "$1" && pwd)"
OUT="$2"
SHAPE="${3:-qwen2-1.5b}"
PORT=8300
V="$B/bin/vllmsnap"
W=/var/tmp/vllmsnap-gpu-smoke
rm -rf "$W"; mkdir -p "$W"
mkdir -p "$OUT"
cat >"$W/ask.py" <<'PY'
import sys, urllib.request
method, path = sys.argv[1], sys.argv[2]
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request("http://127.0.0.1:8300" + path, data=data, method=method,
                             headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=120) as r:
    print(r.read().decode())
PY
http() { timeout 130 python3 "$W/ask.py" "$@"; }
wait_health() {
  local i
  for ((i = 0; i < $1 * 5; i++)); do http GET /health >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
REQ='{"prompt": "Snapshots bring a warmed-up server back in seconds because", "max_tokens": 16}'

if [ "$SHAPE" = cpu ]; then # the CPU stand-in, to try this script on a machine without a GPU
  SERVER=("$B/src/main/python/vllmsnap_standin/server.py" --port $PORT --weights "$W/weights.bin" --weights-size 64MiB
    --kv-size 32MiB --compile-rounds 2)
else
  SERVER=("$B/src/main/python/vllmsnap_standin/gpu_server.py" --shape "$SHAPE" --port $PORT --weights-dir "$W/weights"
    --kv-bytes 4294967296)
fi
t0=$(date +%s.%N)
PID=$(timeout 60 "$V" run -- "$(command -v python3)" "${SERVER[@]}" | tail -1)
wait_health 240; t1=$(date +%s.%N)
REF=$(http POST /v1/completions "$REQ")
timeout 300 "$V" snapshot --pid "$PID" --out "$W/image" --sleep-level 2 --port $PORT >"$W/snapshot.txt" 2>&1
SNAP_RC=$?
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
timeout 300 "$V" restore "$W/image" >"$W/restore.txt" 2>&1
RESTORE_RC=$?
AFTER=$(http POST /v1/completions "$REQ")
timeout 60 "$V" inspect "$W/image" >"$W/inspect.txt" 2>&1
du -sh "$W/image" >>"$W/inspect.txt"
REF="$REF" AFTER="$AFTER" python3 - "$OUT/engine-smoke.json" "$SHAPE" "$t0" "$t1" "$SNAP_RC" "$RESTORE_RC" "$W" <<'PY'
import json, os, sys
out, shape, t0, t1, snap_rc, restore_rc, w = sys.argv[1:]
def text(s):
    try:
        return json.loads(s)["choices"][0]["text"]
    except Exception:
        return None
def read(name):
    try:
        return open(os.path.join(w, name)).read()
    except OSError as e:
        return str(e)
ref, after = text(os.environ.get("REF", "")), text(os.environ.get("AFTER", ""))
r = {"shape": shape, "first_start_to_health_s_with_weight_build": float(t1) - float(t0),
     "snapshot_exit": int(snap_rc), "restore_exit": int(restore_rc),
     "snapshot_output": read("snapshot.txt")[-4000:], "restore_output": read("restore.txt")[-4000:],
     "inspect": read("inspect.txt")[-6000:], "completion_before": ref, "completion_after_restore": after,
     "same_completion": ref is not None and ref == after}
json.dump(r, open(out, "w"), indent=2)
print(json.dumps({k: v for k, v in r.items() if k != "inspect"}, indent=1))
PY
# The restored server runs detached: stop it (it is PID 1 of its namespace, so only SIGKILL reaches it).
RPID=$(grep -o 'restored: PID [0-9]*' "$W/restore.txt" | awk '{print $3}')
[ -n "$RPID" ] && kill -9 "$RPID"
