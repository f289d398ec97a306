#!/usr/bin/env python3
"""GPU benchmark driver (issue 8): cold start against every restore mode of the GPU stand-in, through the bundled
vllmsnap CLI, on one GPU machine. run-benchmark.sh calls it; it needs only Python's standard library here (the
stand-in server it starts needs torch/transformers/safetensors).

Scenarios (pick with --scenarios, comma-separated, run in the order given):
  modes     cold start (page cache dropped) of one source per sleep level, then per level: snapshots (all but the
            last with --leave-running) and restores in three ways: cold (page cache dropped, the restore's own stage
            phase reads the image), prestaged (image, and for level 2 the weights, read into the page cache ahead;
            restore with --stage-readers 0), prestaged + --lazy-pages
  parallel  4 sources on 4 ports, a level-2 snapshot of each, then all 4 restored at once against one by one
  best      (for the 8B shape) cold starts, one level-2 snapshot, restores in --best-modes
  mps       with an MPS daemon running: what a snapshot of a client does (expected: a clear refusal)
  criu-plugin  CRIU's own CUDA plugin doing the GPU steps inside criu dump/restore (through bin/cuda-checkpoint,
            vllmsnap's stand-in for NVIDIA's utility): per repetition a warm source, a level-2 snapshot, a warm restore
A scenario may name its own shape and levels: modes:1+0@qwen2-1.5b, best@llama-8b.
--plan FILE runs a plan's scenarios instead (issue 19: stand-in flavours, levers switched per scenario, N restores at
once; see plan.py and bench/gpu/plans/).
Every external command has a timeout, is logged under OUT/logs, and a failed step is recorded, not fatal. The
results are rewritten to OUT/raw-<tag>.json after every step, so a run cut short keeps what it measured.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probes  # noqa: E402
from plan import PlanError, load_plan  # noqa: E402
from plan_runner import AbortRun, PlanRunner  # noqa: E402
from probes import alive, image_mappings, mean_phases, smaps_summary  # noqa: E402,F401

PROMPT = "Snapshots bring a warmed-up server back in seconds because"
GIB = 1 << 30


class Bench:
    def __init__(self, args):
        self.a = args
        self.bundle = os.path.abspath(args.bundle)
        self.vllmsnap = os.path.join(self.bundle, "bin", "vllmsnap")
        self.out = os.path.abspath(args.out)
        self.logs = os.path.join(self.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.work = args.work
        os.makedirs(self.work, exist_ok=True)
        self.deadline = time.monotonic() + args.budget_s
        self.step = 0
        self.started = []  # host PIDs this run started (sources and restored servers), killed at the end
        self.reference = {}  # shape -> greedy completion of the first source
        self.res = {"tag": args.tag, "started_at": now(), "config": vars(args), "machine": {}, "scenarios": [],
                    "skipped": [], "errors": []}
        self.lock = threading.Lock()

    # ---------------------------------------------------------------- plumbing
    def left(self):
        return self.deadline - time.monotonic()

    def save(self):
        with self.lock:
            self.res["saved_at"] = now()
            tmp = os.path.join(self.out, f"raw-{self.a.tag}.json.tmp")
            with open(tmp, "w") as f:
                json.dump(self.res, f, indent=1)
            os.replace(tmp, os.path.join(self.out, f"raw-{self.a.tag}.json"))

    def sh(self, name, cmd, timeout, env=None, check=False, io_out=None):
        """Runs an argument array with a timeout; logs command and output; returns (rc, output, seconds). With io_out
        (a dict), fills it with what the command and the children it reaped read (probes.io_delta): only meaningful
        while no other thread of this script runs a command."""
        with self.lock:
            self.step += 1
            log = os.path.join(self.logs, f"{self.step:03d}-{name}.log")
        io_before = probes.proc_io() if io_out is not None else None
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                               env=env, text=True, errors="replace")
            rc, out = p.returncode, p.stdout
        except subprocess.TimeoutExpired as e:
            rc, out = 124, (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            out += f"\n[timed out after {timeout} s]"
        except OSError as e:
            rc, out = 127, str(e)
        dt = time.monotonic() - t0
        if io_out is not None:
            io_out.update(probes.io_delta(io_before, probes.proc_io()))
        with open(log, "w") as f:
            f.write(f"$ {' '.join(cmd)}\n[rc {rc}, {dt:.3f} s, {now()}]\n{out}")
        print(f"[{now()}] {name}: rc {rc} in {dt:.2f} s ({self.left():.0f} s left)", flush=True)
        if check and rc != 0:
            raise StepError(f"{name} failed (rc {rc}): {out.strip()[-600:]}")
        return rc, out, dt

    def error(self, where, e):
        print(f"ERROR {where}: {e}", flush=True)
        self.res["errors"].append({"where": where, "error": str(e)[-2000:], "at": now()})
        self.save()

    def skip(self, what, why):
        print(f"SKIP {what}: {why}", flush=True)
        self.res["skipped"].append({"what": what, "why": why})
        self.save()

    def scenario(self, **fields):
        for s in self.res["scenarios"]:
            if s["id"] == fields["id"]:
                return s
        s = dict(fields, reps=[])
        self.res["scenarios"].append(s)
        return s

    def drop_caches(self):
        if self.a.no_drop:
            return
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")

    # ---------------------------------------------------------------- machine facts
    def machine(self):
        m = {"uname": os.uname().release, "cpus": os.cpu_count(), "python": sys.version.split()[0],
             "cpu_model": cpu_model(), "date": now()}
        try:
            m["thp"] = open("/sys/kernel/mm/transparent_hugepage/enabled").read().strip()
        except OSError:
            pass
        try:
            m["mem_total_kib"] = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))
        except (OSError, AttributeError):
            pass
        rc, out, _ = self.sh("nvidia-smi", ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,uuid",
                                            "--format=csv,noheader"], 30)
        if rc == 0 and out.strip():
            name, driver, mem, uuid = [x.strip() for x in out.strip().splitlines()[0].split(",")]
            m.update(gpu=name, driver=driver, gpu_memory=mem, gpu_uuid=uuid, gpu_kind=gpu_kind(name))
        rc, out, _ = self.sh("nvidia-smi-cuda", ["nvidia-smi"], 30)
        cv = re.search(r"CUDA Version:\s*([0-9.]+)", out or "")
        if cv:
            m["cuda_driver_api"] = cv.group(1)
        rc, out, _ = self.sh("versions", [sys.executable, "-c",
                                          "import torch, transformers, safetensors, json; print(json.dumps({'torch': "
                                          "torch.__version__, 'transformers': transformers.__version__, "
                                          "'safetensors': safetensors.__version__, 'torch_cuda': torch.version.cuda}))"],
                             120)
        try:
            m.update(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            m["versions_error"] = out[-500:]
        criu = os.path.join(self.bundle, "criu", "criu.sh")
        rc, out, _ = self.sh("criu-version", [criu, "--version"], 30)
        m["criu"] = out.strip().splitlines()[0] if out.strip() else None
        rc, out, _ = self.sh("java-version", [os.path.join(self.bundle, "jre", "bin", "java"), "-version"], 30)
        m["java"] = out.strip().splitlines()[0] if out.strip() else None
        # The CLI's first start unpacks its AOT cache (build-bundle.sh): do it here, untimed, and record whether
        # the JVM uses it (AOTMode=on refuses to start otherwise).
        rc, out, _ = self.sh("cli-aot", [self.vllmsnap, "--version"], 60,
                             env=dict(os.environ, JAVA_OPTS="-XX:AOTMode=on"))
        m["cli_aot_cache"] = rc == 0
        m["disk_free_gib"] = round(shutil.disk_usage(self.work).free / GIB, 1)
        self.res["machine"] = m
        self.save()

    # ---------------------------------------------------------------- servers
    def server_cmd(self, shape, port, extra=(), env=None):
        """The stand-in's command line; env (the source's own environment, e.g. a lever that changes what the
        snapshot holds) goes in front through env(1), so it shows in the logs and in the image's command."""
        pre = ["env"] + [f"{k}={v}" for k, v in sorted(env.items())] if env else []
        py = os.path.join(self.bundle, "src", "main", "python", "vllmsnap_standin")
        if shape == "cpu":
            return pre + [sys.executable, os.path.join(py, "server.py"), "--port", str(port), "--weights",
                          os.path.join(self.work, "cpu-weights.bin"), "--weights-size", "64MiB", "--kv-size",
                          "32MiB", "--compile-rounds", "2"]
        cmd = [sys.executable, os.path.join(py, "gpu_server.py"), "--shape", shape, "--port", str(port),
               "--weights-dir", self.weights_dir(shape)]
        kv = self.a.kv_bytes.get(shape)
        if kv:
            cmd += ["--kv-bytes", str(kv)]
        return pre + cmd + self.a.server_args.split() + list(extra)

    def weights_dir(self, shape):
        return os.path.join(self.work, "weights", shape)

    def http(self, port, method, path, body=None, timeout=120):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"{}")

    def complete(self, port, max_tokens=16):
        return self.http(port, "POST", "/v1/completions", {"prompt": PROMPT, "max_tokens": max_tokens})["choices"][0]["text"]

    def wait_health(self, port, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.http(port, "GET", "/health", timeout=5)
                return True
            except Exception:
                time.sleep(0.1)
        return False

    def start_source(self, shape, port, cold, health_timeout, extra=(), env=None):
        """vllmsnap run of the stand-in; returns a rep dict with the time from launch to the first token."""
        if cold:
            self.drop_caches()
        t0 = time.monotonic()
        rc, out, _ = self.sh(f"run-{shape}-{port}",
                             [self.vllmsnap, "run", "--"] + self.server_cmd(shape, port, extra, env), 90)
        if rc != 0:
            raise StepError(f"vllmsnap run failed: {out.strip()[-600:]}")
        m = re.search(r"as PID (\d+)", out) or re.search(r"^(\d+)$", out, re.M)
        if not m:
            raise StepError(f"no PID in the output of vllmsnap run: {out.strip()[-600:]}")
        pid = int(m.group(1))
        self.started.append(pid)
        if not self.wait_health(port, health_timeout):
            raise StepError(f"source on port {port} not healthy after {health_timeout} s (pid {pid})")
        t_health = time.monotonic()
        self.complete(port, 1)
        t_token = time.monotonic()
        rep = {"pid": pid, "port": port, "total_s": t_token - t0, "cold_page_cache": cold and not self.a.no_drop,
               "phases": {"launch_to_health": t_health - t0, "first_token": t_token - t_health}}
        try:
            timings = self.http(port, "GET", "/state", timeout=60).get("start_timings") or {}
            rep["server_timings"] = timings
            for k in ("python_start_s", "import_s", "cuda_init_s", "build_and_save_s", "load_weights_s",
                      "kv_alloc_s", "warmup_s"):
                if k in timings:
                    rep["phases"]["server_" + k[:-2]] = timings[k]
        except Exception as e:
            rep["state_error"] = str(e)
        ref = self.complete(port)
        rep["completion"] = ref
        self.reference.setdefault(shape, ref)
        return rep

    def kill(self, pid, port=None, timeout=60):
        """SIGKILL (a namespace's PID 1 ignores the rest) and wait until the process is gone and the port free."""
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not alive(pid) and (port is None or port_free(port)):
                return True
            time.sleep(0.1)
        self.error(f"kill {pid}", f"still alive or port {port} busy after {timeout} s")
        return False

    # ---------------------------------------------------------------- snapshot / restore
    def snapshot(self, pid, port, level, image, leave_running, extra=(), env=None):
        cmd = [self.vllmsnap, "snapshot", "--pid", str(pid), "--out", image, "--port", str(port),
               "--sleep-level", str(level)] + list(extra)
        if leave_running:
            cmd.append("--leave-running")
        rc, out, dt = self.sh(f"snapshot-l{level}", cmd, 400, env=env)
        rep = {"rc": rc, "wall_s": dt, "leave_running": leave_running, "output": out[-3000:]}
        if rc != 0:
            raise StepError(f"snapshot failed (rc {rc}): {out.strip()[-800:]}", rep)
        man = json.load(open(os.path.join(image, "manifest.json")))
        phases = dict(man.get("phaseSeconds") or {})
        rep.update(phases_all=phases, image_bytes=man.get("sizeBytes"), image_files=len(man.get("files") or {}),
                   cuda_processes=man.get("cudaProcesses"))
        # Snapshot time = what a snapshot costs without giving the source back (resume-source is the extra of
        # --leave-running).
        rep["phases"] = {k: v for k, v in phases.items() if k != "resume-source"}
        rep["total_s"] = sum(rep["phases"].values())
        return rep

    def prestage(self, paths, readers=8):
        """Reads every file under paths into the page cache with parallel readers (what a node does ahead of a
        restore request); returns (bytes, seconds)."""
        files = []
        for p in paths:
            for root, _, names in os.walk(p):
                files += [os.path.join(root, n) for n in names]
        files.sort(key=lambda f: -os.path.getsize(f))
        t0 = time.monotonic()

        def read(f):
            n = 0
            with open(f, "rb", buffering=0) as fh:
                while True:
                    b = fh.read(16 << 20)
                    if not b:
                        return n
                    n += len(b)
        with concurrent.futures.ThreadPoolExecutor(readers) as ex:
            total = sum(ex.map(read, files))
        return total, time.monotonic() - t0

    def restore(self, image, port, shape, how, name="restore", extra=(), env=None, reference=None,
                residency_paths=None, measure_io=False, keep=False):
        """how: cold | prestage | prestage-lazy | warm (page cache as it is) | warm-lazy | warm-stage (page cache as it
        is, the restore's default staging). extra: more restore options; env: the restore command's whole
        environment (e.g. os.environ plus the lazy-pages window). reference: the completion to compare with (default
        the first source's of the shape). residency_paths: {name: [paths]} whose page-cache residency is recorded
        right before the command; measure_io: record what the command read (sequential restores only); keep: leave
        the restored server running (the caller kills it)."""
        rep = {"how": how, "port": port}
        if how in ("cold", "prestage", "prestage-lazy"):
            self.drop_caches()
            rep["cold_page_cache"] = not self.a.no_drop
        if how.startswith("prestage"):
            man = json.load(open(os.path.join(image, "manifest.json")))
            paths = [image]
            if man["source"].get("sleepLevel") == 2 and shape != "cpu":
                paths.append(self.weights_dir(shape))  # wake re-reads them
            n, dt = self.prestage(paths)
            rep["prestage_bytes"], rep["prestage_s"] = n, dt
        cmd = [self.vllmsnap, "restore", image] + list(extra)
        if how not in ("cold", "warm-stage"):
            cmd += ["--stage-readers", "0"]
        if how.endswith("lazy"):
            cmd.append("--lazy-pages")
        rep["stage_readers"] = 0 if "--stage-readers" in cmd else "default"
        if residency_paths:
            rep["resident_before"] = {k: probes.residency(v) for k, v in residency_paths.items()}
        io = {} if measure_io else None
        rc, out, dt = self.sh(f"{name}-{how}", cmd, 300, env=env, io_out=io)
        rep.update(rc=rc, wall_s=dt, output=out[-3000:])
        if io is not None:
            rep["io"] = io
        if env:
            rep["env"] = {k: v for k, v in env.items() if os.environ.get(k) != v}
        m = re.search(r"restored: PID (\d+), first token in ([0-9.]+) s", out)
        pid = None
        if m:
            pid = int(m.group(1))
            self.started.append(pid)
            rep["pid"], rep["total_s"] = pid, float(m.group(2))
        rep["phases"] = {k: float(v) for k, v in re.findall(r"^  (\S+)\s+([0-9.]+) s$", out, re.M)}
        try:
            if rc != 0 or pid is None:
                raise StepError(f"restore failed (rc {rc}): {out.strip()[-800:]}", rep)
            text = self.complete(port)
            rep["completion"] = text
            if shape != "cpu":
                try:
                    rep["server_wake"] = self.http(port, "GET", "/state", timeout=30).get("last_wake")
                except Exception as e:
                    rep["server_wake"] = {"error": str(e)}
            ref = reference if reference is not None else self.reference.get(shape)
            rep["same_completion"] = (text == ref) if shape != "cpu" or reference is not None else None
            rep["image_mappings"] = image_mappings(pid)
        except Exception:
            if keep and pid is not None:
                self.kill(pid, port)
            raise
        finally:
            if pid is not None and not keep:
                self.kill(pid, port)
        return rep

    # ---------------------------------------------------------------- scenarios
    def run_modes(self, shape, levels=None):
        port = self.a.port
        levels = [int(x) for x in (levels or self.a.levels).replace("+", ",").split(",")]
        hows = self.a.restore_modes.split(",")
        cold = self.scenario(id=f"{shape}/cold-start", shape=shape, kind="cold-start",
                             note="page cache dropped; vllmsnap run -> /health -> first token of /v1/completions")
        if not self.ensure_weights(shape, port):
            return
        for i, level in enumerate(levels):
            if self.left() < self.a.min_mode_s:
                self.skip(f"{shape} sleep level {level}", f"{self.left():.0f} s left")
                continue
            try:
                rep = self.start_source(shape, port, cold=True, health_timeout=self.a.health_timeout)
                cold["reps"].append(dict(rep, source_for_level=level))
                self.save()
            except Exception as e:
                self.error(f"{shape} source for level {level}", e)
                continue
            pid = rep["pid"]
            snap = self.scenario(id=f"{shape}/snapshot-l{level}", shape=shape, kind="snapshot", sleep_level=level)
            image = None
            nsnap = self.a.snapshot_reps if level == 2 else max(1, self.a.snapshot_reps_big)
            for r in range(nsnap):
                last = r == nsnap - 1
                img = os.path.join(self.work, f"img-{shape}-l{level}-{r}")
                shutil.rmtree(img, ignore_errors=True)
                try:
                    srep = self.snapshot(pid, port, level, img, leave_running=not last)
                    snap["reps"].append(srep)
                    if last:
                        image = img
                    else:
                        shutil.rmtree(img, ignore_errors=True)  # disk: keep only the image restored below
                except Exception as e:
                    snap["reps"].append(getattr(e, "rep", {"error": str(e)}))
                    self.error(f"{shape} snapshot level {level} rep {r}", e)
                    if last:
                        break
                self.save()
            self.kill(pid, port)
            if image is None:
                continue
            for how in hows:
                self.restore_reps(image, port, shape, level, how)
            if not self.a.keep_images:
                shutil.rmtree(image, ignore_errors=True)

    def restore_reps(self, image, port, shape, level, how, sid=None, env=None, **fields):
        """Restores one image --reps times in one mode, as far as the time budget allows; failures are recorded."""
        sc = self.scenario(id=sid or f"{shape}/restore-l{level}-{how}", shape=shape, kind="restore", sleep_level=level,
                           how=how, **fields)
        for r in range(self.a.reps):
            if self.left() < self.a.min_restore_s:
                self.skip(f"{sc['id']} rep {r}", f"{self.left():.0f} s left")
                break
            try:
                sc["reps"].append(self.restore(image, port, shape, how, env=env))
            except Exception as e:
                sc["reps"].append(getattr(e, "rep", {"error": str(e)}))
                self.error(f"{sc['id']} rep {r}", e)
            self.save()

    def run_parallel(self, shape, n=4):
        ports = [self.a.port + 1 + i for i in range(n)]
        images = []
        if not self.ensure_weights(shape, ports[0]):
            return
        try:
            with concurrent.futures.ThreadPoolExecutor(n) as ex:
                reps = list(ex.map(lambda p: self.start_source(shape, p, False, self.a.health_timeout), ports))
        except Exception as e:
            self.error("parallel: sources", e)
            return
        snaps = self.scenario(id=f"{shape}/parallel-sources-snapshot-l2", shape=shape, kind="snapshot", sleep_level=2,
                              note="snapshots of the 4 sources for the parallel restore")
        for rep, port in zip(reps, ports):
            img = os.path.join(self.work, f"img-par-{port}")
            shutil.rmtree(img, ignore_errors=True)
            try:
                snaps["reps"].append(self.snapshot(rep["pid"], port, 2, img, leave_running=False))
                images.append((img, port))
            except Exception as e:
                self.error(f"parallel: snapshot {port}", e)
            self.kill(rep["pid"], port)
        self.save()
        if len(images) < n:
            return
        # Page cache warm for both (images and weights read ahead, as prestaged): the comparison is about sharing
        # the GPU, the CPU and memory bandwidth, not the disk.
        self.prestage([i for i, _ in images] + ([self.weights_dir(shape)] if shape != "cpu" else []))
        one = self.scenario(id=f"{shape}/restore-4-one-by-one", shape=shape, kind="parallel", sleep_level=2,
                            how="prestaged, one after another", replicas=n)
        par = self.scenario(id=f"{shape}/restore-4-at-once", shape=shape, kind="parallel", sleep_level=2,
                            how="prestaged, 4 restores started together", replicas=n)
        for r in range(self.a.reps):
            if self.left() < self.a.min_restore_s * 3:
                self.skip(f"parallel rep {r}", f"{self.left():.0f} s left")
                break
            # one by one
            t0 = time.monotonic()
            each = []
            for img, port in images:
                try:
                    each.append(self.restore(img, port, shape, "warm", name=f"seq{port}"))
                except Exception as e:
                    each.append(getattr(e, "rep", {"error": str(e)}))
                    self.error(f"parallel seq {port}", e)
            one["reps"].append({"total_s": sum(x.get("total_s", 0) for x in each), "wall_s": time.monotonic() - t0,
                                "each_s": [x.get("total_s") for x in each],
                                "same_completion": all(x.get("same_completion") is not False for x in each),
                                "phases": mean_phases(each), "restores": each})
            self.save()
            # at once: all four restore commands start together; the replicas are killed only after all answered
            t0 = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(n) as ex:
                futs = [ex.submit(self.restore_keep, img, port, shape) for img, port in images]
                each = [f.result() for f in futs]
            wall = time.monotonic() - t0
            for x in each:
                if x.get("pid"):
                    self.kill(x["pid"], x["port"])
            par["reps"].append({"total_s": max((x.get("total_s") or wall) for x in each), "wall_s": wall,
                                "each_s": [x.get("total_s") for x in each],
                                "same_completion": all(x.get("same_completion") is not False for x in each),
                                "phases": mean_phases(each), "restores": each})
            self.save()
        for img, _ in images:
            shutil.rmtree(img, ignore_errors=True)

    def restore_keep(self, image, port, shape):
        rep = {"how": "warm", "port": port}
        rc, out, dt = self.sh(f"par{port}", [self.vllmsnap, "restore", image, "--stage-readers", "0"], 300)
        rep.update(rc=rc, wall_s=dt, output=out[-2000:])
        m = re.search(r"restored: PID (\d+), first token in ([0-9.]+) s", out)
        rep["phases"] = {k: float(v) for k, v in re.findall(r"^  (\S+)\s+([0-9.]+) s$", out, re.M)}
        if m:
            rep["pid"], rep["total_s"] = int(m.group(1)), float(m.group(2))
            self.started.append(rep["pid"])
            try:
                text = self.complete(port)
                rep["same_completion"] = (text == self.reference.get(shape)) if shape != "cpu" else None
            except Exception as e:
                rep["completion_error"] = str(e)
        else:
            self.error(f"parallel restore {port}", out[-800:])
        return rep

    def run_best(self, shape):
        """For the big shape: cold starts, one level-2 source, and prestaged restores (the best mode)."""
        port = self.a.port
        cold = self.scenario(id=f"{shape}/cold-start", shape=shape, kind="cold-start",
                             note="page cache dropped; vllmsnap run -> /health -> first token of /v1/completions")
        if not self.ensure_weights(shape, port):
            return
        source = None
        for r in range(self.a.reps):
            if self.left() < self.a.min_mode_s:
                self.skip(f"{shape} cold start rep {r}", f"{self.left():.0f} s left")
                break
            try:
                rep = self.start_source(shape, port, cold=True, health_timeout=self.a.health_timeout)
                cold["reps"].append(rep)
                self.save()
                if r == self.a.reps - 1:
                    source = rep["pid"]
                else:
                    self.kill(rep["pid"], port)
            except Exception as e:
                self.error(f"{shape} cold start rep {r}", e)
        if source is None:
            try:
                source = self.start_source(shape, port, cold=False, health_timeout=self.a.health_timeout)["pid"]
            except Exception as e:
                self.error(f"{shape} source", e)
                return
        snap = self.scenario(id=f"{shape}/snapshot-l2", shape=shape, kind="snapshot", sleep_level=2)
        image = os.path.join(self.work, f"img-{shape}-l2")
        shutil.rmtree(image, ignore_errors=True)
        try:
            snap["reps"].append(self.snapshot(source, port, 2, image, leave_running=False))
        except Exception as e:
            self.error(f"{shape} snapshot", e)
            self.kill(source, port)
            return
        self.kill(source, port)
        self.save()
        for how in self.a.best_modes.split(","):
            self.restore_reps(image, port, shape, 2, how)

    # ---------------------------------------------------------------- issue 9: each lever on and off, one run
    LEVER_SOURCES = {
        # name: (stand-in options, what it changes against the row above)
        "baseline": (["--flavour", "register", "--weight-loader", "safetensors", "--no-trim-on-sleep"],
                     "safetensors loader, heap kept"),
        "trim": (["--flavour", "register", "--weight-loader", "safetensors", "--trim-on-sleep"],
                 "+ freed heap given back at sleep (smaller image)"),
        "staged": (["--flavour", "register", "--weight-loader", "staged", "--trim-on-sleep"],
                   "+ wake through pinned buffers on 4 streams, 8 reader threads"),
        "whole": (["--flavour", "register", "--weight-loader", "register", "--trim-on-sleep", "--register-chunk-mib",
                   "0"],
                  "+ wake straight from the page cache (registered mmap, the whole file registered, then copied)"),
        "fast": (["--flavour", "register", "--weight-loader", "register", "--trim-on-sleep"],
                 "+ wake straight from the page cache (registered mmap, registered in 256 MiB pieces while the last"
                 " piece copies), the stand-in's default"),
    }

    def ensure_weights(self, shape, port):
        """First start of a shape on a fresh machine builds and saves its random weights (recorded, not a cold
        start); False when that failed (recorded as an error)."""
        if shape == "cpu" or os.path.isdir(self.weights_dir(shape)):
            return True
        try:
            rep = self.start_source(shape, port, cold=False, health_timeout=self.a.health_timeout)
            rep["note"] = "first start: built and saved the random weights"
            self.res.setdefault("weight_builds", []).append(dict(rep, shape=shape))
            self.kill(rep["pid"], port)
            self.save()
            return True
        except Exception as e:
            self.error(f"{shape} weight build", e)
            return False

    def run_levers(self, shape, sources=None):
        """One level-2 source per server variant, each started with the page cache dropped (a cold start of that
        variant, recorded), a snapshot of each, then restores with the page cache warm: 'warm' for every variant,
        and every --lever-modes mode for the variant named 'fast' (the fast path)."""
        port = self.a.port
        if not self.ensure_weights(shape, port):
            return
        names = (sources or self.a.lever_sources).replace("+", ",").split(",")
        cold = self.scenario(id=f"{shape}/lever-cold-start", shape=shape, kind="cold-start",
                             note="page cache dropped; vllmsnap run -> /health -> first token of /v1/completions")
        for name in names:
            if self.left() < self.a.min_mode_s:
                self.skip(f"{shape} lever {name}", f"{self.left():.0f} s left")
                continue
            extra, what = self.LEVER_SOURCES[name]
            extra = [] if shape == "cpu" else extra  # the CPU stand-in (a dry run) has none of these options
            try:
                src = self.start_source(shape, port, cold=True, health_timeout=self.a.health_timeout, extra=extra)
                cold["reps"].append(dict(src, lever=name, server_args=extra))
            except Exception as e:
                self.error(f"{shape} lever source {name}", e)
                continue
            snap = self.scenario(id=f"{shape}/lever-{name}-snapshot", shape=shape, kind="snapshot", sleep_level=2,
                                 lever=name, server_args=extra, note=what)
            image = os.path.join(self.work, f"img-{shape}-lever-{name}")
            shutil.rmtree(image, ignore_errors=True)
            try:
                snap["reps"].append(self.snapshot(src["pid"], port, 2, image, leave_running=False))
            except Exception as e:
                snap["reps"].append(getattr(e, "rep", {"error": str(e)}))
                self.error(f"{shape} lever snapshot {name}", e)
                self.kill(src["pid"], port)
                continue
            self.kill(src["pid"], port)
            self.save()
            modes = self.a.lever_modes.split(",") if name == "fast" else ["warm"]
            for mode in modes:
                how, _, env_spec = mode.partition("+")  # warm-lazy+CRIU_LAZY_WINDOW_KIB=2048;VLLMSNAP_THP_FILL=on
                env = dict(os.environ, **dict(kv.split("=", 1) for kv in env_spec.split(";") if kv)) if env_spec else None
                self.restore_reps(image, port, shape, 2, how, sid=f"{shape}/lever-{name}-{mode}", env=env,
                                  lever=name, note=what, env_spec=env_spec)
            if not self.a.keep_images:
                shutil.rmtree(image, ignore_errors=True)

    # ---------------------------------------------------------------- facts behind the levers
    def run_facts(self, shape):
        """What a sleeping source's memory holds (smaps, before and after the driver's checkpoint, with and without
        the heap trim), the machine's THP setting and first-touch speed: the numbers the levers are chosen by."""
        sc = self.scenario(id=f"{shape}/facts", shape=shape, kind="facts")
        rep = {"thp": {}}
        sc["reps"].append(rep)
        for f in ("enabled", "defrag", "shmem_enabled"):
            try:
                rep["thp"][f] = open(f"/sys/kernel/mm/transparent_hugepage/{f}").read().strip()
            except OSError as e:
                rep["thp"][f] = str(e)
        rep["first_touch_gb_s"] = first_touch_speeds()
        self.save()
        port = self.a.port
        if not self.ensure_weights(shape, port):
            return
        probe = os.path.join(self.bundle, "bin", "cuda-probe")
        for name, extra in (("no-trim", ["--no-trim-on-sleep"]), ("trim", ["--trim-on-sleep"])):
            try:
                src = self.start_source(shape, port, cold=False, health_timeout=self.a.health_timeout,
                                        extra=extra if shape != "cpu" else [])
                pid = src["pid"]
                r = rep.setdefault(name, {})
                r["awake"] = smaps_summary(pid)
                r["gpu_awake"] = {k: v for k, v in self.http(port, "GET", "/state", timeout=30).items()
                                  if k.startswith("gpu_memory")}
                self.http(port, "POST", "/sleep?level=2", timeout=120)
                r["asleep"] = smaps_summary(pid)
                r["gpu_asleep"] = {k: v for k, v in self.http(port, "GET", "/state", timeout=30).items()
                                   if k.startswith("gpu_memory")}
                steps = {}
                for step in ("lock", "checkpoint"):
                    rc, out, dt = self.sh(f"facts-{step}", [probe, "step", step, "--pid", str(pid)], 120)
                    steps[step] = {"rc": rc, "s": dt}
                r["gpu_checkpointed"] = smaps_summary(pid)
                for step in ("restore", "unlock"):
                    rc, out, dt = self.sh(f"facts-{step}", [probe, "step", step, "--pid", str(pid)], 120)
                    steps[step] = {"rc": rc, "s": dt}
                r["probe_steps"] = steps
                self.http(port, "POST", "/wake_up", timeout=120)
                r["wake"] = self.http(port, "GET", "/state", timeout=30).get("last_wake")
                r["same_completion"] = self.complete(port) == self.reference.get(shape)
                self.kill(pid, port)
            except Exception as e:
                self.error(f"facts {name}", e)
            self.save()

    def run_mps(self, shape):
        sc = self.scenario(id=f"{shape}/mps", shape=shape, kind="mps")
        rep = {}
        sc["reps"].append(rep)
        pipe = "/tmp/nvidia-mps"
        env = dict(os.environ, CUDA_MPS_PIPE_DIRECTORY=pipe, CUDA_MPS_LOG_DIRECTORY="/tmp/nvidia-mps-log")
        os.makedirs("/tmp/nvidia-mps-log", exist_ok=True)
        rc, out, _ = self.sh("mps-start", ["nvidia-cuda-mps-control", "-d"], 30, env=env)
        rep["daemon_start"] = {"rc": rc, "output": out[-500:]}
        port = self.a.port + 10
        try:
            src = self.start_source(shape, port, cold=False, health_timeout=self.a.health_timeout)
            rep["source_started"] = True
            rc, out, _ = self.sh("ps-mps", ["ps", "-C", "nvidia-cuda-mps-control,nvidia-cuda-mps-server", "-o",
                                            "pid,comm"], 30)
            rep["mps_processes"] = [l.strip() for l in out.splitlines()[1:] if "nvidia-cuda-mps" in l][:10]
            img = os.path.join(self.work, "img-mps")
            shutil.rmtree(img, ignore_errors=True)
            rc, out, dt = self.sh("snapshot-mps", [self.vllmsnap, "snapshot", "--pid", str(src["pid"]), "--out", img,
                                                   "--port", str(port), "--sleep-level", "2"], 200)
            rep["snapshot"] = {"rc": rc, "seconds": dt, "output": out[-2000:], "image_left": os.path.exists(img)}
            try:
                rep["source_serves_after"] = self.complete(port) == src["completion"]
            except Exception as e:
                rep["source_serves_after"] = f"no: {e}"
            self.kill(src["pid"], port)
        except Exception as e:
            self.error("mps", e)
        finally:
            rc, out, _ = self.sh("mps-quit", ["sh", "-c", f"echo quit | CUDA_MPS_PIPE_DIRECTORY={pipe} "
                                                          "timeout 20 nvidia-cuda-mps-control"], 30)
            rep["daemon_quit"] = {"rc": rc, "output": out[-300:]}
            time.sleep(1)
            rc, out, _ = self.sh("mps-left", ["pidof", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server"], 10)
            for pid in out.split():
                try:
                    os.kill(int(pid), 9)
                    rep.setdefault("daemon_killed", []).append(int(pid))
                except (ValueError, ProcessLookupError):
                    pass
        self.save()

    def run_criu_plugin(self, shape):
        """The second baseline: `vllmsnap snapshot/restore --criu-cuda-plugin`, so CRIU's CUDA plugin locks,
        checkpoints, restores and unlocks the GPU inside criu dump and criu restore (everything else as the engine's
        level-2 path). The plugin runs cuda-checkpoint from PATH: the bundle's stand-in, a JVM per call, whose start
        NVIDIA's native utility would not pay; every call is logged (VLLMSNAP_CUDA_CHECKPOINT_LOG) to estimate that."""
        port = self.a.port + 20
        plugins = os.path.join(self.bundle, "criu", "plugins")
        standin = os.path.join(self.bundle, "bin", "cuda-checkpoint")
        if not os.path.isfile(os.path.join(plugins, "cuda_plugin.so")) or not os.access(standin, os.X_OK):
            self.error("criu-plugin", f"the bundle lacks {plugins}/cuda_plugin.so or {standin}")
            return
        note = "CRIU's CUDA plugin does the GPU steps (gpu-checkpoint/gpu-restore phases only check); " \
               "cuda-checkpoint is vllmsnap's JVM stand-in"
        snap = self.scenario(id=f"{shape}/criu-plugin-snapshot-l2", shape=shape, kind="snapshot", sleep_level=2,
                             note=note)
        rest = self.scenario(id=f"{shape}/criu-plugin-restore-l2-warm", shape=shape, kind="restore", sleep_level=2,
                             how="warm, CRIU plugin", note=note)
        # What one start of the stand-in costs beyond its own main(): measured on -h, which needs no driver.
        help_log = os.path.join(self.logs, "criu-plugin-help-calls.jsonl")
        walls = [dt for rc, _, dt in (self.sh("cuda-checkpoint-help", [standin, "-h"], 30, env=self.plugin_env(help_log))
                                      for _ in range(3)) if rc == 0]
        mains = [c["mainMs"] / 1000 for c in read_jsonl(help_log)]
        jvm_start = max(0.0, statistics.median(walls) - statistics.median(mains)) if walls and mains else None
        snap["standin_jvm_start_s"] = rest["standin_jvm_start_s"] = jvm_start
        if not self.ensure_weights(shape, port):
            return
        extra = ["--criu-cuda-plugin", plugins]
        for r in range(self.a.reps):
            if self.left() < self.a.min_mode_s:
                self.skip(f"{shape} criu-plugin rep {r}", f"{self.left():.0f} s left")
                break
            image = os.path.join(self.work, f"img-{shape}-criu-plugin-{r}")
            shutil.rmtree(image, ignore_errors=True)
            pid = None
            try:
                pid = self.start_source(shape, port, cold=False, health_timeout=self.a.health_timeout)["pid"]
                calls = os.path.join(self.logs, f"criu-plugin-{shape}-{r}-dump-calls.jsonl")
                try:
                    # criu's own limit below this script's (400 s): vllmsnap then ends criu and the plugin's
                    # cuda-checkpoint itself and gives the source back (CRIU runs the plugin's commands unbounded).
                    srep = self.snapshot(pid, port, 2, image, False, extra=extra + ["--criu-timeout", "300"],
                                         env=self.plugin_env(calls))
                except Exception as e:
                    srep = getattr(e, "rep", {"error": str(e)})
                    raise
                finally:
                    srep["standin_calls"] = calls_summary(calls, jvm_start)
                    snap["reps"].append(srep)
                    self.keep_plugin_log(image, f"criu-plugin-{shape}-{r}-dump-plugin.log")
                self.kill(pid, port)  # the dump ended it: gone and its port free before the restore
                calls = os.path.join(self.logs, f"criu-plugin-{shape}-{r}-restore-calls.jsonl")
                try:
                    rrep = self.restore(image, port, shape, "warm", name="criu-plugin-restore", extra=extra,
                                        env=self.plugin_env(calls))
                except Exception as e:
                    rrep = getattr(e, "rep", {"error": str(e)})
                    raise
                finally:
                    rrep["standin_calls"] = calls_summary(calls, jvm_start)
                    rest["reps"].append(rrep)
            except Exception as e:
                self.error(f"{shape} criu-plugin rep {r}", e)
            finally:
                if pid is not None and alive(pid):
                    self.kill(pid, port)
                if not self.a.keep_images:
                    shutil.rmtree(image, ignore_errors=True)
                self.save()

    def plugin_env(self, call_log):
        """CRIU passes its environment to the plugin's cuda-checkpoint: the bundle's stand-in first on PATH."""
        return dict(os.environ, PATH=os.path.join(self.bundle, "bin") + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
                    VLLMSNAP_CUDA_CHECKPOINT_LOG=call_log)

    def keep_plugin_log(self, image, name):
        """The plugin's lines of CRIU's dump log (timestamped), from the image or from a failed dump's kept log."""
        for log in (os.path.join(image, "criu", "dump.log"), image + ".failed-dump.log"):
            try:
                with open(log, errors="replace") as f:
                    lines = [l for l in f if "cuda_plugin" in l or "Error" in l]
                with open(os.path.join(self.logs, name), "w") as f:
                    f.writelines(lines)
                return
            except OSError:
                continue

    def cleanup(self):
        for pid in self.started:
            if alive(pid):
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass


class StepError(Exception):
    def __init__(self, msg, rep=None):
        super().__init__(msg)
        if rep is not None:
            rep.setdefault("error", msg)
            self.rep = rep


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def gpu_kind(name):
    """The machine kind results are kept apart by: H100, H200, ... from nvidia-smi's GPU name."""
    m = re.search(r"\b([A-Z]\d{2,4}[A-Z]?)\b", name or "")
    return m.group(1) if m else (name or "none")


def port_free(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def first_touch_speeds(size=1 << 30):
    """GB/s of writing one byte per 4 KiB page of fresh anonymous memory, plain and with MADV_HUGEPAGE (what
    bounds how fast a restore can fill memory)."""
    import mmap
    out = {}
    for name, advice in (("4k", None), ("madv_hugepage", getattr(mmap, "MADV_HUGEPAGE", None))):
        if name != "4k" and advice is None:
            continue
        m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if advice is not None:
            m.madvise(advice)
        t0 = time.monotonic()
        for off in range(0, size, 4096):
            m[off] = 1
        out[name] = round(size / (time.monotonic() - t0) / 1e9, 2)
        m.close()
    return out


def read_jsonl(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError):
        return []


def calls_summary(path, jvm_start_s):
    """The stand-in's calls during one criu run: how many, the driver's share, and an estimate of what a native
    utility would not have spent (JVM starts and the stand-in's own work outside the driver)."""
    calls = read_jsonl(path)
    if not calls:
        return {"calls": 0}
    load = sum(max(0.0, c.get("driverLoadMs", -1)) for c in calls) / 1000
    step = sum(max(0.0, c.get("stepMs", -1)) for c in calls) / 1000
    main = sum(c["mainMs"] for c in calls) / 1000
    out = {"calls": len(calls), "args": [" ".join(c["args"]) + f" -> {c['exit']}" for c in calls],
           "main_s": main, "driver_load_s": load, "driver_step_s": step}
    if jvm_start_s is not None:
        out["overhead_est_s"] = len(calls) * jvm_start_s + (main - load - step)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tag", default="run")
    p.add_argument("--work", default="/var/tmp/vllmsnap-bench")
    p.add_argument("--shape", default="qwen2-1.5b")
    p.add_argument("--scenarios", default="modes:2,parallel,modes:1+0,mps")
    p.add_argument("--levels", default="2,1,0")
    p.add_argument("--restore-modes", default="prestage,cold,prestage-lazy")
    p.add_argument("--best-modes", default="prestage,prestage-lazy")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--snapshot-reps", type=int, default=3, help="snapshots of the level-2 source")
    p.add_argument("--snapshot-reps-big", type=int, default=2, help="snapshots of the level-1 and level-0 sources")
    p.add_argument("--port", type=int, default=8300)
    p.add_argument("--kv-bytes-1p5b", type=int, default=4 * GIB,
                   help="fixed KV pool of the 1.5B shape (0 = by --gpu-memory-utilization)")
    p.add_argument("--budget-s", type=float, default=480, help="no new step starts after this many seconds")
    p.add_argument("--min-mode-s", type=float, default=60)
    p.add_argument("--min-restore-s", type=float, default=20)
    p.add_argument("--health-timeout", type=float, default=300)
    p.add_argument("--mps-shape", default="tiny")
    p.add_argument("--server-args", default="", help="extra stand-in options for every source (levers add theirs)")
    p.add_argument("--lever-sources", default="baseline,trim,staged,fast",
                   help="server variants of the levers scenario, in order (the last one gets every --lever-modes)")
    p.add_argument("--lever-modes", default="warm,warm-lazy",
                   help="restore modes for the last lever source; MODE+ENV=V;ENV2=V2 adds environment to the restore")
    p.add_argument("--no-drop", action="store_true", help="never drop the page cache (for trying the script)")
    p.add_argument("--keep-images", action="store_true")
    p.add_argument("--plan", help="run the scenarios of this plan file (bench/gpu/plans/*.json, see plan.py) instead of"
                                  " --scenarios")
    a = p.parse_args()
    a.kv_bytes = {"qwen2-1.5b": a.kv_bytes_1p5b}
    plan = None
    if a.plan:
        try:
            plan = load_plan(a.plan)  # refused before anything starts: a typo costs no device time
        except PlanError as e:
            p.error(str(e))
    os.environ.setdefault("VLLMSNAP_KEEP_CRIU_LOGS", os.path.join(os.path.abspath(a.out), "logs", "criu"))
    # run-benchmark.sh's timeout ends this script with SIGTERM: still kill what it started (sources and restored
    # servers run in sessions of their own and would outlive it, holding the GPU) and save what was measured.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    b = Bench(a)
    if plan:
        b.res["plan"] = plan
    try:
        b.machine()
        if plan:
            run_plan(b, plan)
        for s in ([] if plan else a.scenarios.split(",")):
            if b.left() < 15:
                b.skip(s, "out of time")
                continue
            print(f"=== {s} ({b.left():.0f} s left)", flush=True)
            s, _, shape = s.partition("@")  # modes:0@qwen2-1.5b runs that scenario on another shape
            if shape:
                s, _, levels = s.partition(":")
                s = s + (":" + levels if levels else "")
                a.shape = shape
            try:
                if s == "modes" or s.startswith("modes:"):  # modes:2 or modes:1+0 picks the sleep levels
                    b.run_modes(a.shape, s.partition(":")[2] or None)
                elif s == "best":
                    b.run_best(a.shape)
                elif s == "parallel":
                    b.run_parallel(a.shape)
                elif s == "levers" or s.startswith("levers:"):  # levers:fast+baseline picks the sources
                    b.run_levers(a.shape, s.partition(":")[2] or None)
                elif s == "facts":
                    b.run_facts(a.shape)
                elif s == "criu-plugin":
                    b.run_criu_plugin(a.shape)
                elif s == "mps":
                    b.run_mps(a.mps_shape if a.shape != "cpu" else "cpu")
                else:
                    b.skip(s, "unknown scenario")
            except Exception as e:
                b.error(s, e)
    finally:
        b.cleanup()
        b.res["finished_at"] = now()
        b.save()
    print(summary(b.res))


def run_plan(b, plan):
    runner = PlanRunner(b)
    for i, s in enumerate(plan["scenarios"]):
        what = f"plan[{i}] {s['kind']} {s['shape']} {s.get('flavour', '')}".rstrip()
        if b.left() < 15:
            b.skip(what, "out of time")
            continue
        print(f"=== {what} ({b.left():.0f} s left)", flush=True)
        try:
            runner.run(s)
        except AbortRun as e:
            b.error(what, f"run stopped: {e}")
            return
        except Exception as e:
            b.error(what, e)


def summary(res):
    lines = []
    for s in res["scenarios"]:
        tot = [r["total_s"] for r in s["reps"] if isinstance(r.get("total_s"), (int, float))]
        if tot:
            lines.append(f"{s['id']:<44} n={len(tot)} min {min(tot):7.3f} med {statistics.median(tot):7.3f}")
        else:
            lines.append(f"{s['id']:<44} no timed reps")
    lines += [f"ERROR {e['where']}: {e['error'][:200]}" for e in res["errors"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
