#!/usr/bin/env bash
# CPU benchmark of our CRIU lazy-pages patch (hack/criu-patches/0001-uffd-fault-window.patch): restore request → all
# memory touched, for a process that reads its whole memory right after restore (as a GPU driver reads its host copy).
# One image of the stand-in server holding ~1 GiB of anonymous memory (weights + KV pool, sleep level 0), restored
# REPS times in each mode, modes interleaved (order rotated each repetition), page cache warm for all:
#   plain          criu restore (all memory copied before the process runs), for reference
#   lazy-w<K>      criu restore --lazy-pages, the daemon serving each fault with K KiB (CRIU_LAZY_WINDOW_KIB=K);
#                  K=4 is upstream CRIU (one page per fault); same binary for every mode
# Timed up to the answer of POST /touch (one byte of every page of the weights and KV pool, sent as soon as the
# restored server's port accepts), from the engine starting `criu restore` (the ratios) and from the CLI's "restore of"
# line (the whole request, same engine overhead in every mode). After each restore every byte is checked
# (POST /touch?mode=bytes: CRC-32 per 16 MiB chunk) against the source. Writes bench/results/cpu-lazy-window-<UTC>.json.
# Two scenarios: "all" touches the weights and the KV pool; "weights" only the weights, mapped above the KV pool and
# the heap, which stay lazy meanwhile (as a GPU driver reads its host copy while the rest of the process is lazy).
# Needs root. Env: REPS=5 WINDOWS="4 256 2048 8192" SCENARIOS="all weights" WEIGHTS_MIB=768 KV_MIB=256 PORT=18590
#                  DIR=/var/tmp/vllmsnap-lazybench (CRIU: VLLMSNAP_CRIU, else $CRIU_PREFIX/sbin/criu)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
hack/install-criu.sh
export VLLMSNAP_CRIU="${VLLMSNAP_CRIU:-${CRIU_PREFIX:-/usr/local}/sbin/criu}"
[ -n "$(ls target/vllmsnap-*-cli.jar 2>/dev/null)" ] || ./mvnw -q package -DskipTests
exec python3 - "$@" <<'PY'
import json, os, platform, re, shutil, socket, statistics, subprocess, sys, threading, time, urllib.request
from datetime import datetime, timezone

REPS = int(os.environ.get("REPS", "5"))
WINDOWS = [int(w) for w in os.environ.get("WINDOWS", "4 256 2048 8192").split()]
UPSTREAM, PATCHED = "lazy-w4", "lazy-w2048"  # CRIU's own behaviour, and our patch's default window
if 4 not in WINDOWS or 2048 not in WINDOWS:
    raise SystemExit("WINDOWS must include 4 (upstream) and 2048 (the patch's default)")
SCENARIOS = os.environ.get("SCENARIOS", "all weights").split()
WEIGHTS_MIB = int(os.environ.get("WEIGHTS_MIB", "768"))
KV_MIB = int(os.environ.get("KV_MIB", "256"))
PORT = int(os.environ.get("PORT", "18590"))
DIR = os.environ.get("DIR", "/var/tmp/vllmsnap-lazybench")
CRIU = os.environ["VLLMSNAP_CRIU"]
CLI = "hack/vllmsnap"
T = 300  # seconds: limit for every command and request


def http(method, path, timeout=T):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def pid_gone(pid, limit=60):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    time.sleep(0.05)
                    continue
        except FileNotFoundError:
            return
        time.sleep(0.05)
    raise SystemExit(f"process {pid} still there after {limit} s")


def await_port_free(limit=60):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", PORT)) != 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"port {PORT} still serving")


def toucher(result, what):
    """Sends POST /touch the moment the restored server's port accepts; notes when the answer came."""
    end = time.monotonic() + T
    while time.monotonic() < end:
        try:
            answer = http("POST", f"/touch?mode=pages&what={what}")
            result["t1"] = time.monotonic()
            result["touch"] = answer
            return
        except (ConnectionError, OSError):
            time.sleep(0.002)
    result["error"] = "server never answered /touch"


def restore(image, mode, what):
    env = dict(os.environ)
    cmd = [CLI, "restore", image, "--stage-readers", "0", "--no-first-token"]
    if mode != "plain":
        cmd.append("--lazy-pages")
        env["CRIU_LAZY_WINDOW_KIB"] = mode.removeprefix("lazy-w")
    result = {}
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=env)
    out, t0, t_criu, touch = [], None, None, None
    for line in p.stdout:
        out.append(line)
        if t0 is None and line.startswith("restore of "):
            t0 = time.monotonic()
            touch = threading.Thread(target=toucher, args=(result, what))
            touch.start()
        elif t_criu is None and re.match(r"\s+\[\s*[0-9.]+ s\] restore\s", line):
            t_criu = time.monotonic()  # the engine starts criu restore now (the lazy-pages daemon already runs)
    rc = p.wait(timeout=T)
    text = "".join(out)
    m = re.search(r"restored: PID (\d+)", text)
    if rc != 0 or not m:
        raise SystemExit(f"{mode}: restore failed (rc {rc}):\n{text}")
    touch.join(T)
    pid = int(m.group(1))
    try:
        if "t1" not in result:
            raise SystemExit(f"{mode}: {result.get('error', 'no answer to /touch')}")
        phases = {k: float(v) for k, v in re.findall(r"^\s+(\w[\w-]*)\s+([0-9.]+) s$", text, re.M)}
        check = http("POST", "/touch?mode=bytes&threads=2")
        return {"scenario": what, "mode": mode, "restoreToAllTouchedSeconds": result["t1"] - t0,
                "criuRestoreToAllTouchedSeconds": result["t1"] - t_criu, "cliPhasesSeconds": phases,
                "touchSecondsInServer": result["touch"]["seconds"], "bytesChecksum": check["checksum"], "pid": pid}
    finally:
        os.kill(pid, 9)
        pid_gone(pid)
        await_port_free()


def main():
    os.makedirs(DIR, exist_ok=True)
    image = os.path.join(DIR, "image")
    shutil.rmtree(image, ignore_errors=True)
    weights = os.path.join(DIR, f"weights-{WEIGHTS_MIB}m")
    src = subprocess.run([CLI, "run", "--", sys.executable, "src/main/python/vllmsnap_standin/server.py",
                          "--port", str(PORT), "--weights", weights, "--weights-size", f"{WEIGHTS_MIB}MiB",
                          "--kv-size", f"{KV_MIB}MiB", "--compile-rounds", "4"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=T, check=True)
    src_pid = int(src.stdout.split()[0])
    end = time.monotonic() + T
    while True:
        try:
            http("GET", "/health", timeout=5)
            break
        except OSError:
            if time.monotonic() > end:
                raise SystemExit("stand-in did not start")
            time.sleep(0.2)
    before = http("POST", "/touch?mode=bytes&threads=2")
    subprocess.run([CLI, "snapshot", "--pid", str(src_pid), "--out", image, "--port", str(PORT)],
                   check=True, timeout=T, stdout=subprocess.DEVNULL)
    pid_gone(src_pid)
    image_bytes = 0
    for root, _, files in os.walk(image):  # page cache warm for every mode alike
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                while chunk := fh.read(16 << 20):
                    image_bytes += len(chunk)
    modes = ["plain"] + [f"lazy-w{w}" for w in WINDOWS]
    runs = []
    for rep in range(REPS):
        order = modes[rep % len(modes):] + modes[:rep % len(modes)]
        for what in SCENARIOS:
            for mode in order:
                r = restore(image, mode, what)
                r["rep"] = rep
                if r["bytesChecksum"] != before["checksum"]:
                    raise SystemExit(f"{what} {mode} rep {rep}: restored memory differs from the source's")
                r["contentIdentical"] = True
                runs.append(r)
                print(f"rep {rep} touch {what:>7} {mode:>12}: criu restore → touched "
                      f"{r['criuRestoreToAllTouchedSeconds']:.3f} s", flush=True)
    shutil.rmtree(image, ignore_errors=True)

    def median(what, key):
        return {m: statistics.median(r[key] for r in runs if r["mode"] == m and r["scenario"] == what) for m in modes}

    results = {}
    for what in SCENARIOS:
        req, criu = median(what, "restoreToAllTouchedSeconds"), median(what, "criuRestoreToAllTouchedSeconds")
        results[what] = {"medianRestoreToAllTouchedSeconds": req, "medianCriuRestoreToAllTouchedSeconds": criu,
                         "ratioUpstreamLazyOverPatchedLazy": criu[UPSTREAM] / criu[PATCHED],
                         "ratioPlainOverPatchedLazy": criu["plain"] / criu[PATCHED]}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    criu_version = subprocess.run([CRIU, "--version"], capture_output=True, text=True, timeout=10).stdout.split()[1]
    java = subprocess.run(["bash", "hack/java-home.sh"], capture_output=True, text=True, timeout=60).stdout.strip()
    stamp_file = os.path.join(os.path.dirname(os.path.dirname(CRIU)), "share/vllmsnap/criu.stamp")
    doc = {
        "benchmark": "cpu: lazy restore → all memory touched, CRIU fault window (upstream 4 KiB vs patched)",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"hostname": platform.node(), "cpuModel": cpu, "cpus": os.cpu_count(),
                    "memoryBytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                    "kernel": platform.release(), "loadAverageAtEnd": open("/proc/loadavg").read().split()[:3]},
        "versions": {"criu": criu_version, "criuBinary": CRIU,
                     "criuStamp": open(stamp_file).read().strip() if os.path.exists(stamp_file) else None,
                     "python": platform.python_version(), "javaHome": java,
                     "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                           timeout=10).stdout.strip()},
        "setup": {"weightsBytes": WEIGHTS_MIB << 20, "kvBytes": KV_MIB << 20, "imageBytes": image_bytes,
                  "sleepLevel": 0, "pageCache": "warm", "reps": REPS, "windowsKiB": WINDOWS,
                  "touch": "POST /touch?mode=pages&what=<scenario>: one byte of every 4 KiB page, one thread, sent as soon"
                           " as the port accepts",
                  "contentCheck": "POST /touch?mode=bytes after every restore equals the source's"},
        "spans": {"restoreToAllTouchedSeconds": "from the CLI's 'restore of' line (request) to the /touch answer",
                  "criuRestoreToAllTouchedSeconds": "from the engine starting criu restore to the /touch answer"},
        "scenarios": {"all": "touch the weights and the KV pool (all of the ~1 GiB) right after restore",
                      "weights": "touch only the weights, mapped above the KV pool and the heap, which stay lazy: as a"
                                 " GPU driver reads its host copy while the rest of the process is still lazy"},
        "results": results,
        "ratiosFrom": "medianCriuRestoreToAllTouchedSeconds",
        "runs": runs,
    }
    out = f"bench/results/cpu-lazy-window-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
    for what, res in results.items():
        for m in modes:
            print(f"median touch {what:>7} {m:>12}: criu restore → touched "
                  f"{res['medianCriuRestoreToAllTouchedSeconds'][m]:.3f} s (request → touched "
                  f"{res['medianRestoreToAllTouchedSeconds'][m]:.3f} s)")
        print(f"touch {what}: upstream lazy / patched lazy {res['ratioUpstreamLazyOverPatchedLazy']:.2f}x; "
              f"plain / patched lazy {res['ratioPlainOverPatchedLazy']:.2f}x")
    print("written", out)


main()
PY
