"""Issue 19's benchmark runs from a plan: a JSON file listing scenarios, each with the switches it is measured under
(the source server's environment and options, each restore's environment and options), so a lever can be measured on
and off in one run and a device call never fails on a typo: load_plan() refuses an unknown key or value before
anything starts (and a Python test loads every committed plan).

Kinds of scenario:
  preflight  the GPU stand-in's --self-check (both flavours, sleep levels 1 and 2, completions compared), before the
             heavy steps; abort_run_on_failure stops the run there, so a broken stand-in costs seconds, not a call
  flavour    one source of a stand-in flavour (started with the page cache dropped when cold_start: the cold-start
             baseline), snapshots at each of `levels` (all but the last with --leave-running), then the restores
             listed in `restores`: each entry a restore mode, the levels it applies to, repetitions, the restore
             command's environment and options
  parallel   `max(counts)` sources on their own ports, one snapshot each at `level`; then for each repetition and
             each count N in counts, N of the images restored at once (N = 1 is one restore alone)

Restore modes: warm (page cache as the dump left it, --stage-readers 0), warm-stage (page cache as it is, the
restore's default staging: what a user gets), warm-lazy (warm with --lazy-pages), cold (page cache dropped, default
staging), prestage (page cache dropped, then image and weights read ahead, --stage-readers 0).
"""
import json
import os

SHAPES = ("qwen2-1.5b", "llama-8b", "tiny", "cpu")
FLAVOURS = ("vllm", "register")
MODES = ("warm", "warm-stage", "warm-lazy", "cold", "prestage")
ENGINE_SWITCHES = "VLLMSNAP_"  # environment the engine reads; anything may be passed, these are the usual ones

COMMON = {"kind", "shape", "note"}
KEYS = {
    "preflight": COMMON | {"flavours", "abort_run_on_failure", "timeout_s"},
    "flavour": COMMON | {"flavour", "levels", "cold_start", "source_env", "server_args", "smaps_asleep_levels",
                         "restores", "kv_bytes"},
    "parallel": COMMON | {"flavour", "level", "counts", "reps", "source_env", "server_args", "env", "args",
                          "kv_bytes"},
}
RESTORE_KEYS = {"mode", "name", "levels", "reps", "env", "args", "note"}


class PlanError(ValueError):
    pass


def load_plan(path):
    """Reads and checks a plan; returns {"description", "scenarios": [...]} with defaults filled in."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        raise PlanError(f"{path}: {e}") from e
    return check_plan(raw, path)


def check_plan(raw, where="plan"):
    if not isinstance(raw, dict) or not isinstance(raw.get("scenarios"), list) or not raw["scenarios"]:
        raise PlanError(f"{where}: needs a non-empty list 'scenarios'")
    unknown = set(raw) - {"description", "scenarios", "device_call"}
    if unknown:
        raise PlanError(f"{where}: unknown keys {sorted(unknown)}")
    out = {"description": raw.get("description", ""), "device_call": raw.get("device_call"), "scenarios": []}
    ids = set()
    for i, s in enumerate(raw["scenarios"]):
        s = check_scenario(s, f"{where}: scenarios[{i}]")
        key = (s["kind"], s["shape"], s.get("flavour"), s.get("level"), json.dumps(s.get("source_env")),
               tuple(s.get("server_args") or ()))
        if key in ids:
            raise PlanError(f"{where}: scenarios[{i}] repeats an earlier scenario (its results would mix)")
        ids.add(key)
        out["scenarios"].append(s)
    return out


def check_scenario(s, where):
    if not isinstance(s, dict):
        raise PlanError(f"{where}: must be an object")
    kind = s.get("kind")
    if kind not in KEYS:
        raise PlanError(f"{where}: kind must be one of {sorted(KEYS)}, was {kind!r}")
    unknown = set(s) - KEYS[kind]
    if unknown:
        raise PlanError(f"{where}: unknown keys {sorted(unknown)} for kind {kind}")
    s = dict(s)
    s.setdefault("shape", "tiny" if kind == "preflight" else None)
    _one_of(s["shape"], SHAPES, f"{where}.shape")
    if kind == "preflight":
        s["flavours"] = s.get("flavours", list(FLAVOURS))
        if not s["flavours"] or any(f not in FLAVOURS for f in s["flavours"]):
            raise PlanError(f"{where}.flavours: a non-empty list of {list(FLAVOURS)}")
        s["abort_run_on_failure"] = _bool(s.get("abort_run_on_failure", True), f"{where}.abort_run_on_failure")
        s["timeout_s"] = _int(s.get("timeout_s", 300), f"{where}.timeout_s", 10)
        return s
    _one_of(s.get("flavour"), FLAVOURS, f"{where}.flavour")
    s["source_env"] = _env(s.get("source_env", {}), f"{where}.source_env")
    s["server_args"] = _strings(s.get("server_args", []), f"{where}.server_args")
    if "--flavour" in s["server_args"]:
        raise PlanError(f"{where}.server_args: the flavour is the scenario's 'flavour', not a server option")
    if "kv_bytes" in s:
        s["kv_bytes"] = _int(s["kv_bytes"], f"{where}.kv_bytes", 1 << 20)
    if kind == "flavour":
        s["levels"] = _levels(s.get("levels"), f"{where}.levels")
        s["cold_start"] = _bool(s.get("cold_start", False), f"{where}.cold_start")
        s["smaps_asleep_levels"] = _levels(s.get("smaps_asleep_levels", []), f"{where}.smaps_asleep_levels",
                                           allow_empty=True)
        if not set(s["smaps_asleep_levels"]) <= set(s["levels"]):
            raise PlanError(f"{where}.smaps_asleep_levels: only levels the scenario snapshots")
        restores = s.get("restores")
        if not isinstance(restores, list) or not restores:
            raise PlanError(f"{where}.restores: a non-empty list")
        s["restores"] = [check_restore(r, s["levels"], f"{where}.restores[{j}]") for j, r in enumerate(restores)]
        names = [(r["name"], lv) for r in s["restores"] for lv in r["levels"]]
        if len(names) != len(set(names)):
            raise PlanError(f"{where}.restores: two entries share a name at one level; give each its own 'name'")
    else:
        s["level"] = _int(s.get("level", 2), f"{where}.level", 1)
        if s["level"] not in (1, 2):
            raise PlanError(f"{where}.level: 1 or 2")
        counts = s.get("counts")
        if not isinstance(counts, list) or not counts or any(not isinstance(c, int) or c < 1 for c in counts):
            raise PlanError(f"{where}.counts: a non-empty list of positive whole numbers")
        s["counts"] = sorted(set(counts))
        reps = s.get("reps", 3)
        if isinstance(reps, dict):
            bad = [k for k in reps if not k.isdigit() or int(k) not in s["counts"]]
            if bad:
                raise PlanError(f"{where}.reps: keys must be counts of this scenario, not {bad}")
            s["reps"] = {c: _int(reps.get(str(c), 1), f"{where}.reps[{c}]", 1) for c in s["counts"]}
        else:
            s["reps"] = {c: _int(reps, f"{where}.reps", 1) for c in s["counts"]}
        s["env"] = _env(s.get("env", {}), f"{where}.env")
        s["args"] = _strings(s.get("args", []), f"{where}.args")
    return s


def check_restore(r, levels, where):
    if not isinstance(r, dict):
        raise PlanError(f"{where}: must be an object")
    unknown = set(r) - RESTORE_KEYS
    if unknown:
        raise PlanError(f"{where}: unknown keys {sorted(unknown)}")
    r = dict(r)
    _one_of(r.get("mode"), MODES, f"{where}.mode")
    r.setdefault("name", r["mode"])
    if not isinstance(r["name"], str) or not r["name"] or "/" in r["name"]:
        raise PlanError(f"{where}.name: a non-empty name without '/'")
    r["levels"] = _levels(r.get("levels", levels), f"{where}.levels")
    if not set(r["levels"]) <= set(levels):
        raise PlanError(f"{where}.levels: only levels the scenario snapshots ({levels})")
    r["reps"] = _int(r.get("reps", 3), f"{where}.reps", 1)
    r["env"] = _env(r.get("env", {}), f"{where}.env")
    r["args"] = _strings(r.get("args", []), f"{where}.args")
    if "--stage-readers" in r["args"] or "--lazy-pages" in r["args"]:
        raise PlanError(f"{where}.args: staging and lazy pages follow from the mode")
    return r


def env_spec(env):
    """The form raw files and reports show an environment in: K=V;K2=V2, sorted."""
    return ";".join(f"{k}={v}" for k, v in sorted(env.items()))


def _one_of(value, allowed, where):
    if value not in allowed:
        raise PlanError(f"{where}: one of {list(allowed)}, was {value!r}")


def _bool(value, where):
    if not isinstance(value, bool):
        raise PlanError(f"{where}: true or false")
    return value


def _int(value, where, minimum):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise PlanError(f"{where}: a whole number of at least {minimum}, was {value!r}")
    return value


def _levels(value, where, allow_empty=False):
    if not isinstance(value, list) or (not value and not allow_empty) or any(v not in (1, 2) for v in value) \
            or len(set(value)) != len(value):
        raise PlanError(f"{where}: a list of distinct sleep levels (1, 2)")
    return list(value)


def _env(value, where):
    if not isinstance(value, dict) or any(not isinstance(k, str) or not k or "=" in k or not isinstance(v, str)
                                          for k, v in value.items()):
        raise PlanError(f"{where}: an object of NAME: \"value\" strings")
    return dict(value)


def _strings(value, where):
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        raise PlanError(f"{where}: a list of strings")
    return list(value)


def plans_dir():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "plans")
