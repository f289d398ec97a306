"""Runs the scenarios of a plan (plan.py) on a gpu_benchmark.Bench: the stand-in's self-check, one flavour's source,
snapshots and restores with their switches, and restores of 1..N images at once on one GPU.

Scenario ids in the raw file: SHAPE/FLAVOUR/cold-start (or warm-start), SHAPE/FLAVOUR/snapshot-lL,
SHAPE/FLAVOUR/restore-lL-NAME, SHAPE/FLAVOUR/parallel-lL-xN; each scenario carries shape, flavour, sleep_level, mode,
env_spec (the restore's switches) and source_env (the source's), so reports select rows by field, not by parsing ids.
Every restore is checked against its own source's greedy completion.
"""
import concurrent.futures
import json
import os
import shutil
import sys
import time

from plan import env_spec
import probes
from probes import alive, mean_phases, smaps_summary


class AbortRun(Exception):
    """A preflight failed and the plan said to stop: the rest of the run would measure a broken stand-in."""


class PlanRunner:
    PARALLEL_PORT_OFFSET = 40  # modes/levers use the base port, the old parallel +1..4, mps +10, criu-plugin +20

    def __init__(self, bench):
        self.b = bench
        self.kept_logs = set()  # scenario ids whose first CRIU restore log is kept

    def run(self, s):
        getattr(self, "run_" + s["kind"])(s)

    # ---------------------------------------------------------------- preflight
    def run_preflight(self, s):
        b = self.b
        shape = s["shape"]
        sc = b.scenario(id=f"{shape}/preflight", shape=shape, kind="preflight",
                        note="gpu_server.py --self-check: both flavours, sleep levels 1 and 2, completions compared")
        if shape == "cpu":
            b.skip(sc["id"], "the CPU stand-in has no self-check")
            return
        py = os.path.join(b.bundle, "src", "main", "python", "vllmsnap_standin", "gpu_server.py")
        cmd = [sys.executable, py, "--self-check", "--shape", shape, "--weights-dir", b.weights_dir(shape)]
        rc, out, dt = b.sh(f"preflight-{shape}", cmd, s["timeout_s"])
        result = last_json_line(out)
        sc["reps"].append({"rc": rc, "wall_s": dt, "result": result, "output": out[-3000:]})
        b.save()
        if rc != 0 or not (result or {}).get("ok"):
            msg = f"stand-in self-check failed (rc {rc}): {out.strip()[-800:]}"
            if s["abort_run_on_failure"]:
                raise AbortRun(msg)
            b.error(sc["id"], msg)

    # ---------------------------------------------------------------- one flavour: source, snapshots, restores
    def run_flavour(self, s):
        b = self.b
        shape, flavour, port = s["shape"], s["flavour"], b.a.port
        base = f"{shape}/{flavour}"
        tags = self.tags(s)
        if not b.ensure_weights(shape, port):
            return
        if b.left() < b.a.min_mode_s:
            b.skip(base, f"{b.left():.0f} s left")
            return
        start = b.scenario(id=f"{base}/{'cold' if s['cold_start'] else 'warm'}-start",
                           kind="cold-start" if s["cold_start"] else "warm-start", **tags,
                           note=("page cache dropped" if s["cold_start"] else "page cache as it was")
                           + "; vllmsnap run -> /health -> first token of /v1/completions")
        try:
            src = b.start_source(shape, port, cold=s["cold_start"], health_timeout=b.a.health_timeout,
                                 extra=self.server_extra(s), env=s["source_env"])
        except Exception as e:
            b.error(f"{base} source", e)
            return
        start["reps"].append(src)
        b.save()
        pid, reference = src["pid"], comparable(shape, src["completion"])
        images = {}
        try:
            for i, level in enumerate(s["levels"]):
                last = i == len(s["levels"]) - 1
                snap = b.scenario(id=f"{base}/snapshot-l{level}", kind="snapshot", sleep_level=level, **tags)
                if level in s["smaps_asleep_levels"]:
                    snap["asleep"] = self.asleep_facts(pid, port, level, reference)
                image = os.path.join(b.work, f"img-{shape}-{flavour}-l{level}")
                shutil.rmtree(image, ignore_errors=True)
                try:
                    rep = b.snapshot(pid, port, level, image, leave_running=not last)
                    rep["large_areas_after_gpu_checkpoint"] = self.dump_facts(image, f"{shape}-{flavour}-l{level}")
                    images[level] = image
                    if not last and reference is not None:
                        rep["source_same_after_resume"] = b.complete(port) == reference
                except Exception as e:
                    rep = getattr(e, "rep", {"error": str(e)})
                    b.error(f"{base} snapshot level {level}", e)
                snap["reps"].append(rep)
                b.save()
        finally:
            b.kill(pid, port)
        residency = {"image": [], "weights": [self.weights_path(shape)]}
        for r in s["restores"]:
            for level in r["levels"]:
                if level not in images:
                    b.skip(f"{base}/restore-l{level}-{r['name']}", f"no level-{level} image")
                    continue
                residency["image"] = [os.path.join(images[level], "criu")]
                self.restore_series(images[level], port, s, level, r, reference, residency)
        if not b.a.keep_images:
            for image in images.values():
                shutil.rmtree(image, ignore_errors=True)

    def restore_series(self, image, port, s, level, r, reference, residency):
        b = self.b
        sid = f"{s['shape']}/{s['flavour']}/restore-l{level}-{r['name']}"
        sc = b.scenario(id=sid, kind="restore", sleep_level=level, how=r["mode"], mode=r["mode"], name=r["name"],
                        env_spec=env_spec(r["env"]), args=r["args"], note=r.get("note"), **self.tags(s))
        env = dict(os.environ, **r["env"]) if r["env"] else None
        for i in range(r["reps"]):
            if b.left() < b.a.min_restore_s:
                b.skip(f"{sid} rep {i}", f"{b.left():.0f} s left")
                break
            try:
                rep = b.restore(image, port, s["shape"], r["mode"], name=f"restore-l{level}-{r['name']}",
                                extra=r["args"], env=env, reference=reference, residency_paths=residency,
                                measure_io=True)
            except Exception as e:
                rep = getattr(e, "rep", {"error": str(e)})
                b.error(f"{sid} rep {i}", e)
            self.criu_log(sid, rep)
            sc["reps"].append(rep)
            b.save()

    # ---------------------------------------------------------------- N restores at once on one GPU
    def run_parallel(self, s):
        b = self.b
        shape, flavour, level = s["shape"], s["flavour"], s["level"]
        base = f"{shape}/{flavour}"
        n = max(s["counts"])
        ports = [b.a.port + self.PARALLEL_PORT_OFFSET + i for i in range(n)]
        tags = self.tags(s)
        if b.left() < b.a.min_mode_s:
            b.skip(f"{base}/parallel-l{level}", f"{b.left():.0f} s left")
            return
        if not b.ensure_weights(shape, ports[0]):
            return
        if shape == "cpu":  # the CPU stand-in creates its weights file at its first start: not n at once
            first = b.start_source(shape, ports[0], False, b.a.health_timeout)
            b.kill(first["pid"], ports[0])
        try:
            with concurrent.futures.ThreadPoolExecutor(n) as ex:
                sources = list(ex.map(lambda p: b.start_source(shape, p, False, b.a.health_timeout,
                                                               extra=self.server_extra(s), env=s["source_env"]),
                                      ports))
        except Exception as e:
            b.error(f"{base} parallel sources", e)
            for pid in list(b.started):
                if alive(pid):
                    b.kill(pid)
            return
        snaps = b.scenario(id=f"{base}/parallel-sources-snapshot-l{level}", kind="snapshot", sleep_level=level,
                           note=f"the {n} sources of the parallel restores", **tags)
        images = []  # (image, port, reference)
        for src, port in zip(sources, ports):
            image = os.path.join(b.work, f"img-par-{flavour}-{port}")
            shutil.rmtree(image, ignore_errors=True)
            if b.left() < b.a.min_restore_s:
                b.skip(f"{base} parallel snapshot {port}", f"{b.left():.0f} s left")
            else:
                try:
                    snaps["reps"].append(b.snapshot(src["pid"], port, level, image, leave_running=False))
                    images.append((image, port, comparable(shape, src["completion"])))
                except Exception as e:
                    snaps["reps"].append(getattr(e, "rep", {"error": str(e)}))
                    b.error(f"{base} parallel snapshot {port}", e)
            b.kill(src["pid"], port)
            b.save()
        env = dict(os.environ, **s["env"]) if s["env"] else None
        rounds = max(s["reps"].values())
        for rep in range(rounds):
            for count in s["counts"]:
                if rep >= s["reps"][count]:
                    continue
                sid = f"{base}/parallel-l{level}-x{count}"
                sc = b.scenario(id=sid, kind="parallel", sleep_level=level, replicas=count, how="warm",
                                env_spec=env_spec(s["env"]), args=s["args"], **tags,
                                note=f"{count} images restored at once, page cache warm; total_s: the slowest")
                if len(images) < count:
                    b.skip(f"{sid} rep {rep}", f"only {len(images)} images")
                    continue
                if b.left() < b.a.min_restore_s + 2 * count:
                    b.skip(f"{sid} rep {rep}", f"{b.left():.0f} s left")
                    continue
                chosen = [images[(rep + k) % len(images)] for k in range(count)]  # one alone is not always image 0
                sc["reps"].append(self.at_once(chosen, shape, level, env, s["args"], sid))
                b.save()
        if not b.a.keep_images:
            for image, _, _ in images:
                shutil.rmtree(image, ignore_errors=True)

    def at_once(self, chosen, shape, level, env, args, sid):
        """Starts one restore per image together; the replicas are killed only after all have answered."""
        b = self.b
        t0 = time.monotonic()

        def one(item):
            image, port, reference = item
            try:
                return b.restore(image, port, shape, "warm", name=f"par-l{level}-{port}", extra=args, env=env,
                                 reference=reference, keep=True)
            except Exception as e:
                return getattr(e, "rep", {"error": str(e), "port": port})

        with concurrent.futures.ThreadPoolExecutor(len(chosen)) as ex:
            each = list(ex.map(one, chosen))
        wall = time.monotonic() - t0
        for x in each:
            if x.get("pid"):
                b.kill(x["pid"], x["port"])
            if x.get("error"):
                b.error(sid, x["error"])
        for x in each:
            self.criu_log(sid, x)
        totals = [x.get("total_s") for x in each]
        timed = [t for t in totals if isinstance(t, (int, float))]
        slowest = max(each, key=lambda x: x.get("total_s") or 0)
        same = [x.get("same_completion") for x in each]
        out = {"replicas": len(chosen), "wall_s": wall, "each_s": totals,
               "same_completion": None if None in same else all(same),
               "phases": mean_phases(each), "slowest_phases": slowest.get("phases"), "restores": each}
        if len(timed) == len(each):  # a failed replica leaves the round untimed, not faster
            out["total_s"] = max(timed)
        return out

    # ---------------------------------------------------------------- facts recorded on the way
    def asleep_facts(self, pid, port, level, reference):
        """The source asleep at `level` (our own /sleep), before the engine's snapshot puts it to sleep again: its
        memory by kind with VmFlags (is the weights backup locked, a device mapping, ...?), what the stand-in says it
        holds; then woken and checked."""
        b = self.b
        out = {"level": level}
        try:
            t0 = time.monotonic()
            b.http(port, "POST", f"/sleep?level={level}", timeout=300)
            out["sleep_s"] = time.monotonic() - t0
            out["smaps"] = smaps_summary(pid)
            state = b.http(port, "GET", "/state", timeout=60)
            out["state"] = {k: state.get(k) for k in ("host_backup_bytes", "pinned_host_memory", "last_sleep",
                                                       "gpu_memory_allocated", "gpu_memory_used_by_all")}
            t0 = time.monotonic()
            b.http(port, "POST", "/wake_up", timeout=300)
            out["wake_s"] = time.monotonic() - t0
            text = b.complete(port)
            out["same_completion_after_wake"] = text == reference if reference is not None else None
        except Exception as e:
            out["error"] = str(e)
            b.error(f"asleep facts pid {pid} level {level}", e)
        b.save()
        return out

    KEPT_DUMP_LINES = (" prot ", "Error", "Warn", "Dumping finished")

    def dump_facts(self, image, name):
        """The large areas CRIU dumped (after the GPU checkpoint), with map-fill eligibility; the dump log's area list,
        warnings and errors are kept (logs/dump-NAME.log)."""
        log = os.path.join(image, "criu", "dump.log")
        try:
            with open(log, errors="replace") as f, open(os.path.join(self.b.logs, f"dump-{name}.log"), "w") as out:
                out.writelines(line for line in f if any(k in line for k in self.KEPT_DUMP_LINES))
            return probes.dump_log_vmas(log)
        except OSError as e:
            return {"error": str(e)}

    def criu_log(self, sid, rep):
        """What CRIU's restore log says about filling memory; the first log of each scenario is kept, the others are
        deleted once read (a run keeps its log archive small)."""
        pid = rep.get("pid")
        keep_dir = os.environ.get("VLLMSNAP_KEEP_CRIU_LOGS")
        if not pid or not keep_dir:
            return
        log = os.path.join(keep_dir, f"restore-{pid}.log")
        if not os.path.exists(log):
            return
        try:
            rep["criu_log"] = probes.restore_log_summary(log)
        except OSError as e:
            rep["criu_log"] = {"error": str(e)}
        if sid in self.kept_logs:
            os.remove(log)
        else:
            self.kept_logs.add(sid)
            rep["criu_log_kept"] = os.path.basename(log)

    # ---------------------------------------------------------------- helpers
    def tags(self, s):
        return {"shape": s["shape"], "flavour": s["flavour"], "source_env": env_spec(s["source_env"]),
                "server_args": s["server_args"]}

    def server_extra(self, s):
        if s["shape"] == "cpu":
            return []  # the CPU stand-in has no flavours (a dry run of the harness)
        extra = ["--flavour", s["flavour"]] + s["server_args"]
        if s.get("kv_bytes"):
            extra += ["--kv-bytes", str(s["kv_bytes"])]
        return extra

    def weights_path(self, shape):
        return os.path.join(self.b.work, "cpu-weights.bin") if shape == "cpu" else self.b.weights_dir(shape)


def comparable(shape, completion):
    """The completion a restore must repeat; None for the CPU stand-in, whose answers depend on its request counter
    and its KV pool (a restore's answer then differs by design)."""
    return None if shape == "cpu" else completion


def last_json_line(text):
    for line in reversed((text or "").strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None
