#!/usr/bin/env python3
"""Cold-JVM cost of `vllmsnap restore` through GPU bundles (bench/gpu/build-bundle.sh), baseline and contenders in
one run, rounds interleaved so machine load hits all alike.

Each restore is a fresh JVM, as on the GPU machine. Per restore: wall (launch -> exit), the restore's own total
(restore start -> first token), its phases, and wall - total (JVM start, CLI parsing, exit: outside the restore's
measure). The image is a small stand-in snapshotted at sleep level 2 by the first bundle's demo, so the numbers are
dominated by what the JVM does, not by bytes moved. Needs root and CRIU.

Usage: cli_startup.py --out FILE [--rounds N] LABEL=BUNDLE_DIR[:JAVA_OPTS] ...
"""
import argparse, json, os, platform, re, socket, statistics, subprocess, sys, tempfile, time


def run_restore(bundle, opts, image):
    env = dict(os.environ, JAVA_OPTS=opts)
    t0 = time.monotonic()
    p = subprocess.run([os.path.join(bundle, "bin", "vllmsnap"), "restore", "--stage-readers", "0", image],
                       capture_output=True, text=True, env=env, timeout=120)
    wall = time.monotonic() - t0
    m = re.search(r"^restored: PID (\d+), first token in ([0-9.]+) s$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        sys.exit(f"restore failed ({bundle} {opts}): {p.stdout[-800:]} {p.stderr[-800:]}")
    pid, total = int(m.group(1)), float(m.group(2))
    phases = {k: float(v) for k, v in re.findall(r"^  (\S+)\s+([0-9.]+) s$", p.stdout, re.M)}
    return pid, {"wall_s": wall, "total_s": total, "outside_s": wall - total, "phases": phases}


def stop(pid, port):
    subprocess.run(["kill", "-9", str(pid)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the next restore needs the port free
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)
    sys.exit(f"port {port} still busy after killing {pid}")


def median_of(reps, key):
    return statistics.median(r[key] for r in reps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--port", type=int, default=0, help="stand-in port (default: a free one)")
    ap.add_argument("configs", nargs="+", help="LABEL=BUNDLE_DIR[:JAVA_OPTS]; the first is the baseline")
    a = ap.parse_args()
    if not a.port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            a.port = s.getsockname()[1]
    configs = []
    for c in a.configs:
        label, rest = c.split("=", 1)
        bundle, _, opts = rest.partition(":")
        configs.append((label, bundle, opts))

    work = tempfile.mkdtemp(prefix="vllmsnap-cli-startup-", dir="/var/tmp")
    demo = subprocess.run([os.path.join(configs[0][1], "bin", "vllmsnap"), "demo", "--dir", work, "--weights-mib", "64",
                           "--kv-mib", "32", "--compile-rounds", "2", "--port", str(a.port), "--keep"],
                          capture_output=True, text=True, timeout=300)
    m = re.search(r"^image kept: (\S+)", demo.stdout, re.M)
    if demo.returncode != 0 or not m:
        sys.exit("demo failed: " + demo.stdout[-1500:] + demo.stderr[-1500:])
    image = m.group(1)

    reps = {label: [] for label, _, _ in configs}
    for label, bundle, opts in configs:  # one untimed restore each: page cache, AOT cache unpacked
        pid, _ = run_restore(bundle, opts, image)
        stop(pid, a.port)
    for _ in range(a.rounds):
        for label, bundle, opts in configs:
            pid, rep = run_restore(bundle, opts, image)
            stop(pid, a.port)
            reps[label].append(rep)
    subprocess.run(["rm", "-rf", work])

    base = configs[0][0]
    summary = {}
    for label, bundle, opts in configs:
        r = reps[label]
        s = {k: round(median_of(r, k), 4) for k in ("wall_s", "total_s", "outside_s")}
        s["prepare_s"] = round(statistics.median(x["phases"].get("prepare", 0) for x in r), 4)
        s["after_criu_s"] = round(statistics.median(
            sum(v for k, v in x["phases"].items() if k in ("wake", "ready", "first-token")) for x in r), 4)
        s["wall_ratio_to_" + base] = round(s["wall_s"] / median_of(reps[base], "wall_s"), 3)
        s["total_ratio_to_" + base] = round(s["total_s"] / median_of(reps[base], "total_s"), 3)
        low = {k: round(min(x[k] for x in r), 4) for k in ("wall_s", "total_s", "outside_s")}
        low["prepare_s"] = round(min(x["phases"].get("prepare", 0) for x in r), 4)
        summary[label] = {"bundle": bundle, "java_opts": opts, "median": s, "min": low}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    java = subprocess.run([os.path.join(configs[0][1], "jre", "bin", "java"), "-version"], capture_output=True,
                          text=True).stderr.splitlines()[0]
    criu = subprocess.run([os.path.join(configs[0][1], "criu", "criu.sh"), "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]
    doc = {"benchmark": "vllmsnap restore through the GPU bundle's CLI, fresh JVM each: JVM cost before/after",
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
                       "loadavg_at_end": open("/proc/loadavg").read().split()[:3]},
           "java": java, "criu": criu, "rounds": a.rounds, "baseline": base,
           "image": "stand-in, 64 MiB weights, 32 MiB KV pool, sleep level 2 (12 MiB image), page cache warm",
           "summary": summary, "reps": reps}
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
