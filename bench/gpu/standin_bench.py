#!/usr/bin/env python3
"""Cold start to first token of the GPU stand-in server, and its sleep/wake round trips, measured from outside.

Usage: standin_bench.py --bundle DIR --out FILE.json [--shape qwen2-1.5b] [--probe PATH]
Steps: (1) first start builds and saves the safetensors weights (reported, not a cold start); (2) page cache
dropped, then process start -> /health -> first completion token, timed (cold); (3) the same again with the page
cache warm; (4) sleep level 1 and 2 with wake, each followed by a completion that must equal the first one
(greedy decoding); (5) when --probe is given, the GPU state of the sleeping (level 2) server is locked,
checkpointed, restored and unlocked through vllmsnap's FFM path, then it is woken and must answer alike.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

STARTED = []
PROMPT = "Snapshots bring a warmed-up server back in seconds because"


def http(port, method, path, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def complete(port, max_tokens=16):
    r = http(port, "POST", "/v1/completions", {"prompt": PROMPT, "max_tokens": max_tokens})
    return r["choices"][0]["text"]


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


class Server:
    def __init__(self, args, log_path):
        self.args = args
        self.port = args.port
        cmd = [sys.executable, os.path.join(args.bundle, "src", "main", "python", "vllmsnap_standin", "gpu_server.py"),
               "--shape", args.shape, "--port", str(self.port), "--weights-dir", args.weights_dir]
        if args.kv_bytes:
            cmd += ["--kv-bytes", str(args.kv_bytes)]
        self.log = open(log_path, "a")
        self.t_start = time.monotonic()
        STARTED.append(self)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1"))

    def wait_healthy(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} (see log)")
            try:
                http(self.port, "GET", "/health", timeout=2)
                return time.monotonic() - self.t_start
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("server not healthy in time")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.log.close()


def timed_start(args, log_path, label):
    s = Server(args, log_path)
    healthy = s.wait_healthy(args.start_timeout)
    t0 = time.monotonic()
    text = complete(s.port, max_tokens=1)
    first_token = time.monotonic() - s.t_start
    state = http(s.port, "GET", "/state")
    return s, {"label": label, "to_health_s": healthy, "first_token_s": first_token,
               "first_completion_s": time.monotonic() - t0, "server_timings": state.get("start_timings"),
               "first_token_text": text}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bundle", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--shape", default="qwen2-1.5b")
    p.add_argument("--port", type=int, default=8123)
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--kv-bytes", type=int, default=0)
    p.add_argument("--probe", default=None, help="cuda-probe launcher for the GPU checkpoint round trip")
    p.add_argument("--start-timeout", type=float, default=240)
    args = p.parse_args()
    args.weights_dir = args.weights_dir or f"/var/tmp/vllmsnap-gpu/{args.shape}"
    log_path = os.path.splitext(args.out)[0] + ".server.log"
    result = {"shape": args.shape, "runs": [], "ok": False}

    def save():
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)

    try:
        s, first = timed_start(args, log_path, "first start (builds weights when missing)")
        result["runs"].append(first)
        s.stop()
        save()
        result["page_cache_dropped"] = drop_caches()
        s, cold = timed_start(args, log_path, "cold (page cache dropped)")
        result["runs"].append(cold)
        s.stop()
        save()
        s, warm = timed_start(args, log_path, "warm page cache")
        result["runs"].append(warm)
        save()
        reference = complete(s.port)
        result["reference_completion"] = reference
        for level in (1, 2):
            t0 = time.monotonic()
            http(s.port, "POST", f"/sleep?level={level}")
            t1 = time.monotonic()
            sleeping = http(s.port, "GET", "/is_sleeping")["is_sleeping"]
            http(s.port, "POST", "/wake_up")
            t2 = time.monotonic()
            same = complete(s.port) == reference
            result[f"sleep_level_{level}"] = {"sleep_s": t1 - t0, "wake_s": t2 - t1, "was_sleeping": sleeping,
                                              "same_completion_after_wake": same}
            save()
        if args.probe:
            http(s.port, "POST", "/sleep?level=2")
            pid = s.proc.pid
            t0 = time.monotonic()
            cyc = subprocess.run([args.probe, "cycle", "--pid", str(pid)], capture_output=True, text=True, timeout=120)
            t1 = time.monotonic()
            http(s.port, "POST", "/wake_up")
            t2 = time.monotonic()
            same = complete(s.port) == reference
            result["gpu_checkpoint_sleeping_server"] = {
                "probe_output": cyc.stdout.strip(), "probe_stderr": cyc.stderr.strip()[-2000:],
                "probe_exit": cyc.returncode, "cycle_wall_s": t1 - t0, "wake_after_s": t2 - t1,
                "same_completion_after_restore": same}
            save()
        s.stop()
        result["ok"] = True
    except Exception as e:  # report what happened; the caller keeps the other steps' output
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        for server in STARTED:
            try:
                server.stop()
            except Exception:
                pass
    save()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
