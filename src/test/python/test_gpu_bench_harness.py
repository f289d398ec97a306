"""CPU-side checks of the GPU benchmark's harness (bench/gpu): every committed plan loads, bad plans are refused before
a device call starts, CRIU log parsing, page-cache residency, I/O counters, and the issue-19 report judging synthetic
runs of two machine kinds."""
import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench", "gpu")
sys.path.insert(0, BENCH)
import flavours_report  # noqa: E402
import plan  # noqa: E402
import probes  # noqa: E402

GIB = 1 << 30


class PlanTest(unittest.TestCase):
    def test_every_committed_plan_loads(self):
        names = sorted(f for f in os.listdir(plan.plans_dir()) if f.endswith(".json"))
        self.assertIn("issue19-1p5b.json", names)
        self.assertIn("issue19-8b.json", names)
        for name in names:
            p = plan.load_plan(os.path.join(plan.plans_dir(), name))
            self.assertTrue(p["scenarios"], name)

    def test_device_plans_judge_the_vllm_flavour_with_five_repetitions_at_both_levels(self):
        judged = set()
        for name in ("issue19-1p5b.json", "issue19-8b.json"):
            for s in plan.load_plan(os.path.join(plan.plans_dir(), name))["scenarios"]:
                if s["kind"] == "flavour" and s["flavour"] == "vllm" and not s["source_env"]:
                    self.assertTrue(s["cold_start"], "the cold-start baseline is in the same run")
                    for r in s["restores"]:
                        if r["mode"] == "warm" and not r["env"] and not r["args"] and r["reps"] >= 5:
                            judged |= {(s["shape"], lv) for lv in r["levels"]}
                if s["kind"] == "parallel":
                    self.assertGreaterEqual(s["reps"][1], 5)
                    self.assertGreaterEqual(s["reps"][4], 5)
                    self.assertEqual(s["counts"], [1, 2, 4, 8])
        self.assertEqual(judged, {("qwen2-1.5b", 1), ("qwen2-1.5b", 2), ("llama-8b", 1), ("llama-8b", 2)})

    def good(self):
        return {"scenarios": [{"kind": "flavour", "shape": "qwen2-1.5b", "flavour": "vllm", "levels": [2, 1],
                               "restores": [{"mode": "warm", "reps": 5},
                                            {"mode": "warm", "name": "thp", "levels": [1],
                                             "env": {"VLLMSNAP_THP_FILL": "on"}}]}]}

    def refused(self, raw, words):
        with self.assertRaises(plan.PlanError) as e:
            plan.check_plan(raw)
        self.assertIn(words, str(e.exception))

    def test_a_good_plan_gets_its_defaults(self):
        s = plan.check_plan(self.good())["scenarios"][0]
        self.assertEqual(s["restores"][0]["levels"], [2, 1])
        self.assertEqual(s["restores"][0]["name"], "warm")
        self.assertFalse(s["cold_start"])
        self.assertEqual(plan.env_spec(s["restores"][1]["env"]), "VLLMSNAP_THP_FILL=on")

    def test_typos_and_bad_values_are_refused_by_where_they_are(self):
        raw = self.good()
        raw["scenarios"][0]["restores"][0]["rep"] = 5
        self.refused(raw, "restores[0]: unknown keys ['rep']")
        raw = self.good()
        raw["scenarios"][0]["flavour"] = "vLLM"
        self.refused(raw, "scenarios[0].flavour")
        raw = self.good()
        raw["scenarios"][0]["restores"][1]["mode"] = "hot"
        self.refused(raw, "restores[1].mode")
        raw = self.good()
        raw["scenarios"][0]["restores"][1]["env"] = {"VLLMSNAP_THP_FILL": True}
        self.refused(raw, "restores[1].env")
        raw = self.good()
        raw["scenarios"][0]["restores"][1]["levels"] = [0]
        self.refused(raw, "restores[1].levels")

    def test_a_restore_level_the_scenario_does_not_snapshot_is_refused(self):
        raw = self.good()
        raw["scenarios"][0]["levels"] = [2]
        self.refused(raw, "only levels the scenario snapshots")

    def test_two_rows_of_one_name_at_one_level_would_mix_and_are_refused(self):
        raw = self.good()
        raw["scenarios"][0]["restores"][1].pop("name")
        self.refused(raw, "share a name")

    def test_the_flavour_is_not_a_server_option_and_staging_follows_the_mode(self):
        raw = self.good()
        raw["scenarios"][0]["server_args"] = ["--flavour", "register"]
        self.refused(raw, "server_args")
        raw = self.good()
        raw["scenarios"][0]["restores"][0]["args"] = ["--stage-readers", "4"]
        self.refused(raw, "follow from the mode")

    def test_parallel_repetitions_per_count(self):
        s = plan.check_plan({"scenarios": [{"kind": "parallel", "shape": "cpu", "flavour": "vllm",
                                            "counts": [4, 1, 2], "reps": {"1": 5, "4": 5}}]})["scenarios"][0]
        self.assertEqual(s["counts"], [1, 2, 4])
        self.assertEqual(s["reps"], {1: 5, 2: 1, 4: 5})
        self.refused({"scenarios": [{"kind": "parallel", "shape": "cpu", "flavour": "vllm", "counts": [1, 4],
                                     "reps": {"8": 3}}]}, "keys must be counts")

    def test_the_benchmark_refuses_a_bad_plan_before_it_starts_anything(self):
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "bad.json")
            with open(bad, "w") as f:
                json.dump({"scenarios": [{"kind": "flavour", "shape": "qwen2-1.5b"}]}, f)
            r = subprocess.run([sys.executable, os.path.join(BENCH, "gpu_benchmark.py"), "--bundle", d, "--out",
                                os.path.join(d, "out"), "--plan", bad], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("flavour", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "out")), "nothing was started")


DUMP_LOG = """\
(00.101) Collected, longest area occupies 786432 pages
(00.102) 0x400000-0x420000 (128K) prot 0x1 flags 0x2 fdflags 0 st 0x41 off 0 reg fp  shmid: 0x1
(00.103) 0x7f0000000000-0x7f00c0000000 (3145728K) prot 0x3 flags 0x22 fdflags 0 st 0x201 off 0 reg ap  shmid: 0
(00.104) 0x7f1000000000-0x7f10c0000000 (3145728K) prot 0x3 flags 0x2022 fdflags 0 st 0x201 off 0 reg ap  shmid: 0
(00.105) 0x7f2000000000-0x7f20c0000000 (3145728K) prot 0x3 flags 0x21 fdflags 0 st 0x101 off 0 reg as  shmid: 0x7
(00.107) 0x7f0000000000-0x7f00c0000000 (3145728K) prot 0x3 flags 0x22 fdflags 0 st 0x201 off 0 reg ap  shmid: 0
(00.106) 0x7f3000000000-0x7f3000200000 (2048K) prot 0 flags 0x22 fdflags 0 st 0x201 off 0 reg ap  shmid: 0
"""

RESTORE_LOG = """\
(00.080709)      1: nr_restored_pages: 479398
(00.080712)      1: nr_shared_pages:   0
(00.080714)      1: nr_enqueued:       8163
(00.080715)      1: nr_lazy:           0
(00.080736)      1: map fill: 1842 MiB of private anonymous memory may be mapped from the image
(00.111652) pie: 1: 	mmap(0x400000 -> 0x420000, 0x1 0x12 8)
(00.111660) pie: 1: 	mmap(0x7f0000000000 -> 0x7f00c0000000, 0x3 0x2032 -1)
(00.178290) pie: 1: map fill: 1795 MiB mapped in 241 mappings, 77 MiB read
"""


class CriuLogTest(unittest.TestCase):
    def write(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.remove, f.name)
        return f.name

    def test_dump_log_areas_say_why_map_fill_cannot_map_them(self):
        areas = probes.dump_log_vmas(self.write(DUMP_LOG))
        self.assertEqual([a["size_mib"] for a in areas], [3072.0, 3072.0, 3072.0], "only areas of 64 MiB and more")
        plain, locked, shared = areas
        self.assertTrue(plain["map_fill_eligible"])
        self.assertEqual(plain["flags"], ["MAP_PRIVATE", "MAP_ANONYMOUS"])
        self.assertFalse(locked["map_fill_eligible"])
        self.assertTrue(any("MAP_LOCKED" in w for w in locked["map_fill_refused_because"]))
        self.assertFalse(shared["map_fill_eligible"])
        self.assertIn("ANON_SHARED", shared["status"])
        self.assertTrue(any("shmem" in w for w in shared["map_fill_refused_because"]))

    def test_restore_log_tells_what_was_mapped_and_what_read(self):
        s = probes.restore_log_summary(self.write(RESTORE_LOG))
        self.assertEqual((s["map_fill_candidate_mib"], s["map_fill_mapped_mib"], s["map_fill_mappings"],
                          s["map_fill_read_mib"]), (1842, 1795, 241, 77))
        self.assertEqual(s["nr_restored_pages"], 479398)
        self.assertEqual(len(s["large_areas"]), 1)
        self.assertIn("MAP_LOCKED", s["large_areas"][0]["flags"])
        self.assertEqual(s["large_areas"][0]["size_mib"], 3072.0)


class ProbesTest(unittest.TestCase):
    def test_residency_sees_a_file_just_read_and_counts_every_file(self):
        with tempfile.TemporaryDirectory() as d:
            for name, size in (("a.img", 3 << 20), ("b.img", 5000), ("empty", 0)):
                with open(os.path.join(d, name), "wb") as f:
                    f.write(os.urandom(size))
            for name in ("a.img", "b.img"):
                with open(os.path.join(d, name), "rb") as f:
                    f.read()
            r = probes.residency([d])
            self.assertEqual(r["files"], 3)
            self.assertEqual(r["total_bytes"], (3 << 20) + 5000)
            self.assertGreater(r["resident_bytes"], 0)
            self.assertLessEqual(r["resident_bytes"], r["total_bytes"])

    def test_io_counters_include_what_a_reaped_child_read(self):
        if not probes.proc_io():
            self.skipTest("this kernel has no task I/O accounting")  # /proc/self/io exists on every CI kernel here
        with tempfile.NamedTemporaryFile() as f:
            f.write(os.urandom(8 << 20))
            f.flush()
            before = probes.proc_io()
            subprocess.run(["cat", f.name], stdout=subprocess.DEVNULL, check=True)
            delta = probes.io_delta(before, probes.proc_io())
        self.assertGreaterEqual(delta["rchar"], 8 << 20)


def restore_rep(total, phases, same=True, rchar=None, resident=1.0, image=2 * GIB):
    rep = {"total_s": total, "phases": dict(phases), "same_completion": same}
    if rchar is not None:
        rep["io"] = {"rchar": rchar, "read_bytes": 0}
        rep["resident_before"] = {"image": {"resident_bytes": int(image * resident), "total_bytes": image,
                                            "fraction": resident}}
    return rep


def scenario(sid, kind, shape, flavour, level=None, mode=None, reps=(), env_spec="", replicas=None):
    s = {"id": sid, "kind": kind, "shape": shape, "flavour": flavour, "source_env": "", "server_args": [],
         "reps": list(reps)}
    if level is not None:
        s["sleep_level"] = level
    if mode is not None:
        s.update(mode=mode, how=mode, name=mode, env_spec=env_spec, args=[])
    if replicas is not None:
        s.update(replicas=replicas, env_spec="", args=[])
    return s


def synthetic_run(tag, gpu, l1_s, l2_s, four_s, staged_extra, n=5, same=True):
    ph = {"prepare": 0.08, "restore": 0.2, "gpu-restore": 0.4, "wake": 0.2, "first-token": 0.1}
    sh = "qwen2-1.5b"
    scen = [
        scenario(f"{sh}/vllm/cold-start", "cold-start", sh, "vllm", reps=[{"total_s": 24.0, "phases": {}}]),
        scenario(f"{sh}/vllm/restore-l1-warm", "restore", sh, "vllm", 1, "warm",
                 [restore_rep(l1_s + 0.01 * i, ph, same=same or i > 0) for i in range(n)]),
        scenario(f"{sh}/vllm/restore-l2-warm", "restore", sh, "vllm", 2, "warm",
                 [restore_rep(l2_s + 0.01 * i, ph, rchar=50 << 20) for i in range(n)]),
        scenario(f"{sh}/vllm/restore-l2-warm-stage", "restore", sh, "vllm", 2, "warm-stage",
                 [restore_rep(l2_s + 0.4, dict(ph, stage=0.4), rchar=(50 << 20) + staged_extra) for _ in range(3)]),
        scenario(f"{sh}/vllm/restore-l1-copy-thp", "restore", sh, "vllm", 1, "warm",
                 [restore_rep(l1_s + 1, ph) for _ in range(3)], env_spec="VLLMSNAP_MAP_FILL=off"),
        scenario(f"{sh}/register/restore-l2-warm", "restore", sh, "register", 2, "warm",
                 [restore_rep(0.9, ph) for _ in range(n)]),
    ]
    for count, slowest in ((1, 1.0), (2, 1.2), (4, four_s), (8, 2.5)):
        reps = [{"total_s": slowest, "phases": ph, "same_completion": True,
                 "restores": [restore_rep(slowest, ph) for _ in range(count)]} for _ in range(5)]
        scen.append(scenario(f"{sh}/vllm/parallel-l2-x{count}", "parallel", sh, "vllm", 2, replicas=count,
                             reps=reps))
    return {"tag": tag, "started_at": f"2026-12-01T10:0{len(tag)}:00+00:00", "finished_at": None,
            "machine": {"gpu": gpu, "driver": "580.159.04", "cpu_model": "some CPU", "uname": "6.18"},
            "config": {}, "scenarios": scen, "errors": [], "skipped": []}


class FlavoursReportTest(unittest.TestCase):
    def test_machine_kinds_are_kept_apart(self):
        results = flavours_report.report([synthetic_run("a", "NVIDIA H100 80GB HBM3", 0.9, 1.1, 1.2, 0),
                                          synthetic_run("b", "NVIDIA H200", 0.9, 1.1, 1.2, 0)], "2026-12-01")
        self.assertEqual(sorted(results), ["H100", "H200"])
        self.assertEqual([r["tag"] for r in results["H100"]["runs"]], ["a"])
        self.assertEqual([r["tag"] for r in results["H200"]["runs"]], ["b"])

    def targets(self, run):
        res = flavours_report.report([run], "2026-12-01")
        (kind,) = res
        return {t["target"].split(":")[0]: t for t in res[kind]["runs"][0]["targets"]}, res

    def test_targets_met_and_missed_with_the_limits_of_the_issue(self):
        t, _ = self.targets(synthetic_run("a", "NVIDIA H200", l1_s=0.97, l2_s=1.25, four_s=1.29, staged_extra=0))
        self.assertTrue(t["1.5B level 1"]["met"])
        self.assertFalse(t["1.5B level 2"]["met"])
        self.assertAlmostEqual(t["1.5B level 2"]["missed_by_s"], 0.07, places=2)
        self.assertIsNone(t["8B level 1"]["met"], "not measured is not met")
        self.assertTrue(t["4 1.5B restores at once (level 2)"]["met"])
        self.assertAlmostEqual(t["4 1.5B restores at once (level 2)"]["ratio"], 1.29)
        self.assertAlmostEqual(t["1.5B level 1"]["ratio_cold_over_restore"], 24.0 / 0.99, places=3)
        self.assertEqual(t["1.5B level 2"]["register_flavour_median_s"], 0.9)
        self.assertEqual([x["env"] for x in t["1.5B level 1"]["levers"]], ["VLLMSNAP_MAP_FILL=off"])

    def test_lever_rows_and_the_register_flavour_are_never_the_judged_row(self):
        t, _ = self.targets(synthetic_run("a", "NVIDIA H200", l1_s=3.0, l2_s=1.0, four_s=1.2, staged_extra=0))
        self.assertEqual(t["1.5B level 1"]["row"], "qwen2-1.5b/vllm/restore-l1-warm")
        self.assertFalse(t["1.5B level 1"]["met"])

    def test_fewer_than_five_repetitions_are_not_judged(self):
        t, _ = self.targets(synthetic_run("a", "NVIDIA H200", 0.5, 0.5, 1.0, 0, n=4))
        self.assertIsNone(t["1.5B level 1"]["met"])
        self.assertIn("n=4", t["1.5B level 1"]["why"])

    def test_a_restore_that_answered_otherwise_fails_the_target_and_the_run(self):
        t, res = self.targets(synthetic_run("a", "NVIDIA H200", 0.5, 0.5, 1.0, 0, same=False))
        self.assertFalse(t["1.5B level 1"]["met"])
        comp = res["H200"]["runs"][0]["completions"]
        self.assertFalse(comp["all_identical"])
        self.assertEqual(comp["differed"], ["qwen2-1.5b/vllm/restore-l1-warm rep 0"])

    def test_restores_whose_completion_was_never_compared_prove_nothing(self):
        run = synthetic_run("a", "NVIDIA H200", 0.5, 0.5, 1.0, 0)
        for s in run["scenarios"]:
            for r in s["reps"]:
                for x in r.get("restores", []) + [r]:
                    x.pop("same_completion", None)
        t, res = self.targets(run)
        self.assertIsNone(t["1.5B level 1"]["met"])
        self.assertIn("compared", t["1.5B level 1"]["why"])
        self.assertIsNone(t["4 1.5B restores at once (level 2)"]["met"])
        comp = res["H200"]["runs"][0]["completions"]
        self.assertEqual(comp["restores_compared"], 0)
        self.assertFalse(comp["all_identical"])
        self.assertTrue(comp["not_compared"])

    def test_staging_that_re_reads_a_resident_image_is_caught(self):
        t, _ = self.targets(synthetic_run("a", "NVIDIA H200", 0.5, 0.5, 1.0, staged_extra=2 * GIB))
        staged = t["1.5B level 2 (vllm)"]
        self.assertFalse(staged["met"])
        self.assertEqual(staged["staged_read_bytes"], 2 * GIB)
        t, _ = self.targets(synthetic_run("a", "NVIDIA H200", 0.5, 0.5, 1.0, staged_extra=1 << 20))
        self.assertTrue(t["1.5B level 2 (vllm)"]["met"])

    def test_staging_is_not_judged_on_an_image_out_of_the_page_cache(self):
        run = synthetic_run("a", "NVIDIA H200", 0.5, 0.5, 1.0, staged_extra=2 * GIB)
        for s in run["scenarios"]:
            if s["id"].endswith("warm-stage"):
                for r in s["reps"]:
                    r["resident_before"]["image"]["fraction"] = 0.5
        t, _ = self.targets(run)
        self.assertIsNone(t["1.5B level 2 (vllm)"]["met"])

    def test_a_kind_meets_a_target_only_when_every_run_of_it_does(self):
        res = flavours_report.report([synthetic_run("a", "NVIDIA H200", 0.9, 1.0, 1.2, 0),
                                      synthetic_run("bb", "NVIDIA H200", 1.1, 1.0, 1.2, 0)], "2026-12-01")
        v = {x["target"].split(":")[0]: x for x in res["H200"]["targets"]}
        self.assertEqual(v["1.5B level 1"]["runs"], {"a": True, "bb": False})
        self.assertFalse(v["1.5B level 1"]["met"])
        self.assertTrue(v["1.5B level 2"]["met"])
        self.assertIsNone(v["8B level 2"]["met"])

    def test_readme_table_has_a_row_per_judged_target_and_machine(self):
        res = flavours_report.report([synthetic_run("a", "NVIDIA H100 80GB HBM3", 0.9, 1.1, 1.2, 0),
                                      synthetic_run("b", "NVIDIA H200", 0.95, 1.3, 1.5, 0)], "2026-12-01")
        md = flavours_report.markdown(res)
        rows = [line for line in md.splitlines() if line.startswith("| H")]
        self.assertEqual(len(rows), 6, md)  # 1.5B L1, L2 and N at once, per machine
        self.assertTrue(any("H200" in r and "level 2" in r and "missed by 0.12 s" in r for r in rows), md)
        self.assertTrue(any("H100" in r and "4 at once 1.20 s (1.20x)" in r for r in rows), md)

    def test_the_raw_runs_are_not_changed(self):
        run = synthetic_run("a", "NVIDIA H200", 0.9, 1.1, 1.2, 0)
        before = copy.deepcopy(run)
        flavours_report.report([run], "2026-12-01")
        self.assertEqual(run, before)


if __name__ == "__main__":
    unittest.main()
