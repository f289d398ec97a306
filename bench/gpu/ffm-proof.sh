#!/usr/bin/env bash
# The FFM GPU proof, run on a GPU machine from the bundle (build-bundle.sh): vllmsnap's Java code drives
# lock -> checkpoint -> restore -> unlock of a CUDA process through libcuda, and the process checks its GPU memory
# is unchanged; then the same in one JVM; then MPS detection against a real MPS daemon and client; then the GPU
# stand-in server's cold start and a GPU checkpoint of it asleep.
# Usage: ffm-proof.sh BUNDLE_DIR OUT_DIR. Every step has a timeout and one failing step does not stop the others.
# Output: OUT/steps.jsonl (one JSON line per step), OUT/target.log, OUT/nvsmi.txt, OUT/standin.json(+ .server.log).
set -x
B="$(cd "$1" && pwd)"
OUT="$2"
mkdir -p "$OUT"
PROBE="$B/bin/cuda-probe"
W="$(mktemp -d)"
STEPS="$OUT/steps.jsonl"

# rec NAME TIMEOUT_S CMD... : runs CMD, appends {name, rc, wall_ms, stdout (JSON when it is), stderr} to STEPS.
rec() {
  local name="$1" to="$2"; shift 2
  local t0 t1 rc
  t0=$(date +%s%N)
  timeout "$to" "$@" >"$W/out" 2>"$W/err"; rc=$?
  t1=$(date +%s%N)
  python3 - "$name" "$rc" "$(( (t1 - t0) / 1000000 ))" "$W/out" "$W/err" >>"$STEPS" <<'PY'
import json, sys
name, rc, ms, o, e = sys.argv[1:]
out = open(o, errors="replace").read().strip()
err = open(e, errors="replace").read().strip()
try:
    out = json.loads(out)
except ValueError:
    pass
print(json.dumps({"name": name, "rc": int(rc), "wall_ms": int(ms), "stdout": out, "stderr": err[-3000:]}))
PY
  echo "== $name rc=$rc"; head -c 3000 "$W/out"; echo; tail -c 1500 "$W/err"
  return $rc
}

# mem NAME PID : GPU memory used (whole GPU and per process) and the process's resident host memory.
mem() {
  rec "$1" 30 bash -c "nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader,nounits; \
    nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits; grep VmRSS /proc/$2/status"
}

wait_file() { # wait_file PATH TIMEOUT_S
  local i
  for ((i = 0; i < $2 * 10; i++)); do [ -e "$1" ] && return 0; sleep 0.1; done
  echo "timed out waiting for $1"; return 1
}

: >"$STEPS"
timeout 30 nvidia-smi >"$OUT/nvsmi.txt" 2>&1
timeout 30 nvidia-smi -q | head -60 >>"$OUT/nvsmi.txt" 2>&1
rec versions 120 bash -c 'uname -r; cat /proc/driver/nvidia/version; python3 -c "import torch, transformers, safetensors; print(torch.__version__, torch.version.cuda, transformers.__version__, safetensors.__version__)"; '"$B"'/jre/bin/java -version 2>&1; command -v cuda-checkpoint || echo "no cuda-checkpoint on PATH"'
rec info 60 "$PROBE" info
rec criu_bundled 60 bash -c "\"$B/criu/criu.sh\" --version; \"$B/criu/criu.sh\" check"
rec info_backend_cli 60 "$PROBE" info --backend cli
rec info_without_libcuda 60 env JAVA_OPTS=-Dvllmsnap.libcuda=libcuda-absent.so.1 "$PROBE" info

# --- 1. checkpoint round trip of a CUDA process holding 4 GiB of known data, one JVM per step ---
mkdir -p "$W/t"
python3 "$B/cuda_target.py" "$W/t" 4 >"$OUT/target.log" 2>&1 &
TPID=$!
if wait_file "$W/t/ready.json" 180; then
  rec target_ready 10 cat "$W/t/ready.json"
  rec cuda_pids_of_this_tree 30 "$PROBE" cuda-pids --root $$
  rec mps_check_target 30 "$PROBE" mps --pid "$TPID"
  rec state_initial 30 "$PROBE" step state --pid "$TPID"
  mem mem_before "$TPID"
  rec lock 60 "$PROBE" step lock --pid "$TPID" --timeout-ms 10000
  rec checkpoint 300 "$PROBE" step checkpoint --pid "$TPID"
  mem mem_checkpointed "$TPID"
  rec restore_thread_id 30 "$PROBE" step restore-tid --pid "$TPID"
  rec restore 300 "$PROBE" step restore --pid "$TPID"
  mem mem_restored "$TPID"
  rec unlock 60 "$PROBE" step unlock --pid "$TPID"
  rec state_final 30 "$PROBE" step state --pid "$TPID"
  touch "$W/t/verify"
  wait_file "$W/t/result-1.json" 120 && rec verify_round1 10 cat "$W/t/result-1.json"
  # --- 2. the same four steps in one JVM (as the engine calls them) ---
  rec cycle_one_jvm 600 "$PROBE" cycle --pid "$TPID" --timeout-ms 10000
  touch "$W/t/verify"
  wait_file "$W/t/result-2.json" 120 && rec verify_round2 10 cat "$W/t/result-2.json"
fi
touch "$W/t/stop"
for _ in $(seq 50); do kill -0 "$TPID" 2>/dev/null || break; sleep 0.2; done
kill -9 "$TPID" 2>/dev/null
wait "$TPID" 2>/dev/null

# --- 3. MPS: a real daemon and a client; vllmsnap must refuse the client with a clear message ---
export CUDA_MPS_LOG_DIRECTORY="$W/mps-log"
mkdir -p "$CUDA_MPS_LOG_DIRECTORY"
rec mps_daemon_start 30 nvidia-cuda-mps-control -d
sleep 1
rec mps_check_shell_with_daemon 30 "$PROBE" mps --pid $$
mkdir -p "$W/m"
python3 "$B/cuda_target.py" "$W/m" 1 >"$W/mps-client.log" 2>&1 &
CPID=$!
if wait_file "$W/m/ready.json" 120; then
  rec mps_client_evidence_raw 30 bash -c "grep -iE 'mps|shm|nvidia' /proc/$CPID/maps | awk '{print \$6}' | sort -u; ls -l /proc/$CPID/fd | awk '{print \$NF}' | sort | uniq -c; grep -i mps /proc/$CPID/net/unix; ls -la /tmp/nvidia-mps /dev/shm"
  rec mps_check_client 30 "$PROBE" mps --pid "$CPID"
  rec mps_client_lock_refused 60 "$PROBE" step lock --pid "$CPID"
  rec mps_client_lock_driver_says 60 "$PROBE" step lock --pid "$CPID" --skip-mps-check --timeout-ms 5000
  rec mps_client_unlock_after 60 "$PROBE" step unlock --pid "$CPID" --skip-mps-check
else
  rec mps_client_failed 10 cat "$W/mps-client.log"
fi
touch "$W/m/stop"
for _ in $(seq 25); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.2; done
kill -9 "$CPID" 2>/dev/null
rec mps_daemon_quit 20 bash -c 'echo quit | timeout 15 nvidia-cuda-mps-control'
sleep 1
for p in $(pgrep -x nvidia-cuda-mps-control) $(pgrep -x nvidia-cuda-mps-server); do kill -9 "$p"; done
rec mps_after_quit 30 "$PROBE" mps --pid $$
cat "$W/mps-client.log" "$W"/mps-log/* 2>/dev/null | tail -40
unset CUDA_MPS_LOG_DIRECTORY

# --- 4. GPU stand-in server (Qwen2-1.5B shape): cold start to first token; GPU checkpoint while asleep ---
rec standin 330 python3 "$B/standin_bench.py" --bundle "$B" --out "$OUT/standin.json" --probe "$PROBE"

python3 - "$STEPS" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    s = json.loads(line)
    out = s["stdout"]
    brief = json.dumps(out)[:160] if not isinstance(out, str) else out.replace("\n", " | ")[:160]
    print(f'{s["name"]:32} rc={s["rc"]:<3} {s["wall_ms"]:>7} ms  {brief}')
PY
