"""Overhead per run: where the wall time of very short runs through `gptnb sweep` goes, two code versions side by side.

Runs the real command line — `gptnb sweep NAME --init-seeds 1,2,3 -p max_steps 2` (the local executor, papermill:
the default door) — in a temporary folder, for two versions of gptnb in one invocation, interleaved (before, after,
after, before, ...) so that the machine's load falls on both alike:

  before  a git ref (default 9d7e730, the commit this benchmark was written against), cloned into the temporary
          folder and put first on PYTHONPATH, so `gptnb` and its kernels import the old code;
  after   the working tree this script lives in.

Each run's wall time is split into phases from timestamps taken from outside the code under test:

  start-up   process starts, imports, kernel start, the sweep's own work (its share per run), process exits
  data       dataset preparation/identity/checks/loading (`load_run_data`, `dataset_identity`, the notebook's data cell)
  model      building the seeded model and its optimizer (`build_model`, `build_optimizer`)
  training   the optimizer steps (`optimizer_step`, `after_step`)
  test       test scoring (`score_held_out`, the notebook's evaluation cell: reload + smoke test)
  records    the record: claim, start/finish record, weights, fingerprints, charts, the executed notebook's writes
  other      time inside `train` or a cell not covered by the above

How: a `sitecustomize.py` put on PYTHONPATH (both versions) logs each Python process's start (from /proc) and end,
and wraps the functions named in `PHASES` where a module defines them, logging each call's start and end; papermill
stores every cell's start and end in the executed notebook. A run is the job process the sweep started for it,
or, where the sweep runs its jobs from its own process, its `run_notebook` call and the kernel started in it. Every instant of a run is given to the innermost
interval covering it (a call inside a cell inside the kernel inside the job process). The sweep process's time
outside its runs (its start-up, the plan, the log) is shared out equally as start-up. Non-training time per run is
the run's wall time less its training phase.

The datasets are prepared, and each version's code is byte-compiled, by one untimed warm-up run per version; the
timed sweeps then find a prepared dataset, as every run of a real sweep but its first does.

    python bench/run_overhead.py [--before 9d7e730] [--seeds 3] [--steps 2] [--rounds 2] [--out bench/results]

Writes run-overhead.json and run-overhead.md into --out and prints the table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASE_NAMES = ("start-up", "data", "model", "training", "test", "records", "other")
TICK = 0.05   # a process's start from /proc is in clock ticks (10 ms): a kernel started at once may read as just before its call
RUN = "run"   # not a phase: a run's span when the sweep runs it from its own process (no job process to time)

# module -> {function: phase}; a function a version lacks is simply not wrapped (the JSON lists what was)
PHASES = {
    "gptnb.sweep": {"claim_run_folder": "records", "run_notebook": RUN},
    # the `before` code (9d7e730) had the launcher and the record in gptnb.train, and two test-scoring functions
    "gptnb.train": {"load_run_data": "data", "dataset_identity": "data", "build_model": "model",
                    "build_optimizer": "model", "optimizer_step": "training", "after_step": "training",
                    "run_test_loss": "test", "run_test_score": "test", "score_held_out": "test",
                    "validation_loss": "test", "save_model": "records",
                    "plot_metrics": "records", "start_record": "records", "finish_record": "records",
                    "weights_fingerprint": "records", "hardware": "records", "claim_run_folder": "records",
                    "resume": "records", "notebook_spec": "start-up", "load_run_model": "test",
                    "train": "other", "run_training": "records"},
    "gptnb.launch": {"dataset_identity": "data", "plot_metrics": "records", "start_record": "records",
                     "finish_record": "records", "hardware": "records", "claim_run_folder": "records",
                     "notebook_spec": "start-up", "load_run_model": "test", "run_training": "records"},
    "gptnb.records": {"update_record": "records", "claim_run_folder": "records"},
    "gptnb.evaluate": {"smoke_test": "test", "unigram_entropy": "data"},
    "gptnb.datasets": {"load_tokens": "data"},
}

# the executed notebook's cells: the first pattern found in a cell's source gives its phase
CELL_PHASES = (("injected-parameters", "start-up"), ("parameters", "start-up"), ("run_training(", "records"),
               ("_namespace = dict(globals())", "start-up"), ("spec.configs()", "start-up"),
               ("display(Image", "records"), ("unigram_entropy(", "data"), ("smoke_test(", "test"),
               ("weights sha256", "records"), (".release()", "records"))

HOOK = r'''
import atexit, functools, importlib.abc, json, os, sys, time
_LOG, _TARGETS = os.environ.get("GPTNB_BENCH_EVENTS"), json.loads(os.environ.get("GPTNB_BENCH_TARGETS", "{}"))

def _emit(event):
    with open(_LOG, "a") as f: f.write(json.dumps({"pid": os.getpid(), **event}) + "\n")

def _process_start():
    "When this process was created (fork), from /proc: before the interpreter started."
    ticks = os.sysconf("SC_CLK_TCK")
    start = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]) / ticks
    uptime_now = float(open("/proc/uptime").read().split()[0])
    return time.time() - (uptime_now - start)

def _wrap(fn, name, phase):
    @functools.wraps(fn)
    def timed(*args, **kwargs):
        t = time.time()
        try: return fn(*args, **kwargs)
        finally: _emit({"kind": "call", "name": name, "phase": phase, "start": t, "end": time.time()})
    return timed

class _Finder(importlib.abc.MetaPathFinder):
    "Wrap the target functions of a module right after it is executed, before anyone imports names from it."
    def find_spec(self, name, path, target=None):
        if name not in _TARGETS: return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"): continue
            spec = finder.find_spec(name, path, target)
            if spec is not None: break
        else: return None
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            for fn, phase in _TARGETS[name].items():
                if callable(getattr(module, fn, None)):
                    setattr(module, fn, _wrap(getattr(module, fn), f"{name}.{fn}", phase))
                    _emit({"kind": "wrapped", "name": f"{name}.{fn}"})
        spec.loader.exec_module = exec_module
        return spec

if _LOG:
    _cmd = open("/proc/self/cmdline", "rb").read().split(b"\0")
    _emit({"kind": "start", "ppid": os.getppid(), "start": _process_start(),
           "cmd": [c.decode(errors="replace") for c in _cmd if c][:6]})
    atexit.register(lambda: _emit({"kind": "end", "end": time.time()}))
    sys.meta_path.insert(0, _Finder())
'''


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def prepare_before(ref: str, into: Path) -> str:
    "A clone of this repository at `ref` (shared objects: nothing in the repository changes); its full commit."
    subprocess.run(["git", "clone", "--quiet", "--shared", "--no-checkout", str(ROOT), str(into)], check=True)
    subprocess.run(["git", "-C", str(into), "checkout", "--quiet", "--detach", ref], check=True)
    return subprocess.run(["git", "-C", str(into), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def default_dataset() -> Path:
    "The tiny preset's prepared dataset in the default data folder (prepared first if it is missing)."
    code = ("from gptnb.config import get_preset; from gptnb.datasets import prepare_token_dataset; "
            "p = get_preset('tiny'); print(prepare_token_dataset(p.dataset, vocab_size=p.vocab_size))")
    env = {k: v for k, v in os.environ.items() if k != "GPTNB_DATA_DIR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return Path(out.stdout.strip().splitlines()[-1])


def version_env(code: Path, hook: Path, data: Path, events: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PYTHONPATH")}
    env.update(PYTHONPATH=f"{code}{os.pathsep}{hook}", GPTNB_DATA_DIR=str(data), GPTNB_BENCH_EVENTS=str(events),
               GPTNB_BENCH_TARGETS=json.dumps(PHASES))
    return env


def run_sweep(gptnb: str, name: str, seeds: list, steps: int, runs: Path, cwd: Path, env: dict) -> float:
    cmd = [gptnb, "sweep", name, "--init-seeds", ",".join(map(str, seeds)), "-p", "max_steps", str(steps),
           "--runs-dir", str(runs)]
    t = time.time()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.time() - t
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return wall


def _when(stamp: str) -> float:
    "papermill's ISO timestamps (UTC) as epoch seconds."
    t = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()


def cell_phase(cell: dict) -> str:
    tags, source = cell.get("metadata", {}).get("tags", []), "".join(cell.get("source", ""))
    for pattern, phase in CELL_PHASES:
        if pattern in tags or pattern in source: return phase
    return "other"


def notebook_intervals(path: Path) -> list[tuple]:
    "(start, end, level, phase) of each executed code cell, and the span between the first and last (notebook writes)."
    nb = json.loads(path.read_text())
    cells = [(_when(m["start_time"]), _when(m["end_time"]), 3, cell_phase(c)) for c in nb["cells"]
             if c["cell_type"] == "code" and (m := c.get("metadata", {}).get("papermill", {})).get("end_time")]
    if not cells: return []
    return [(cells[0][0], cells[-1][1], 2, "records"), *cells]


def split(intervals: list[tuple], lo: float, hi: float) -> dict:
    "Seconds of [lo, hi] per phase: each instant goes to the covering interval of the highest level, latest start."
    points = sorted({lo, hi, *(t for s, e, *_ in intervals for t in (s, e) if lo < t < hi)})
    out = dict.fromkeys(PHASE_NAMES, 0.0)
    for a, b in zip(points, points[1:]):
        mid = (a + b) / 2
        cover = [(lvl, s, ph) for s, e, lvl, ph in intervals if s <= mid < e]
        out[max(cover)[2] if cover else "start-up"] += b - a
    return out


def role(p: dict) -> str:
    "What a logged process was, from its command line."
    cmd = " ".join(p["cmd"])
    return "job" if "submitit" in cmd else "kernel" if "ipykernel" in cmd else "sweep" if "sweep" in cmd else "other"


def run_spans(events: list, sweep: dict, children: dict, family) -> list[tuple]:
    """(start, end, pids, process spans) of each run: a job process the sweep started (submitit's controller, its
    worker and the kernel), or, when the sweep runs each job from its own process, its `run_notebook` call and the
    kernel it started."""
    jobs = sorted((p for p in children.get(sweep["pid"], []) if role(p) == "job" and p["end"]), key=lambda p: p["start"])
    if jobs:
        return [(j["start"], j["end"], {m["pid"] for m in family(j)},
                 [(m["start"], m["end"] or j["end"], 1, "start-up") for m in family(j)[1:]]) for j in jobs]
    spans = []
    for call in sorted((e for e in events if e["kind"] == "call" and e["pid"] == sweep["pid"] and e["phase"] == RUN),
                       key=lambda e: e["start"]):
        members = [m for k in children.get(sweep["pid"], []) if call["start"] - TICK <= k["start"] <= call["end"]
                   for m in family(k)]
        spans.append((call["start"], call["end"], {sweep["pid"], *(m["pid"] for m in members)},
                      [(m["start"], m["end"] or call["end"], 1, "start-up") for m in members]))
    return spans


def analyse(events_path: Path, runs_dir: Path) -> dict:
    "Per-run phases of one sweep from its event log and its executed notebooks."
    events = [json.loads(l) for l in events_path.read_text().splitlines() if l.strip()]
    procs = {}
    for e in events:
        if e["kind"] == "start": procs[e["pid"]] = {**e, "end": None}
    for e in events:
        if e["kind"] == "end" and e["pid"] in procs: procs[e["pid"]]["end"] = e["end"]
    sweep = next(p for p in procs.values() if role(p) == "sweep")
    children = {}
    for p in procs.values(): children.setdefault(p["ppid"], []).append(p)
    def family(p): return [p, *(d for c in children.get(p["pid"], []) for d in family(c))]
    notebooks = {n: _when(json.loads(n.read_text())["metadata"]["papermill"]["start_time"])
                 for n in runs_dir.glob("*/train.ipynb")}
    runs = []
    for start, end, pids, spans in run_spans(events, sweep, children, family):
        call_events = [e for e in events if e["kind"] == "call" and e["pid"] in pids and e["phase"] != RUN
                       and start <= e["start"] <= end]
        calls = [(e["start"], e["end"], 4, e["phase"]) for e in call_events]
        nb = [n for n, began in notebooks.items() if start <= began <= end]
        cells = notebook_intervals(nb[0]) if len(nb) == 1 else []
        by_call = {}
        for e in call_events: by_call[e["name"]] = by_call.get(e["name"], 0.0) + e["end"] - e["start"]
        runs.append({"run": nb[0].parent.name if len(nb) == 1 else None, "own_wall_s": end - start,
                     "processes": len(spans) + 1, "phases": split(calls + spans + cells, start, end),
                     "calls_s": by_call})
    sweep_wall = sweep["end"] - sweep["start"]
    share = (sweep_wall - sum(r["own_wall_s"] for r in runs)) / len(runs)
    for r in runs:
        r["sweep_share_s"] = share
        r["phases"]["start-up"] += share
        r["wall_s"] = r["own_wall_s"] + share
    wrapped = sorted({e["name"] for e in events if e["kind"] == "wrapped"})
    return {"sweep_wall_s": sweep_wall, "runs": runs, "wrapped": wrapped}


def mean(xs): return sum(xs) / len(xs)


def summarise(sweeps: list[dict]) -> dict:
    "Mean seconds per run of each phase, wall and non-training time, per version."
    out = {}
    for version in ("before", "after"):
        runs = [r for s in sweeps if s["version"] == version for r in s["runs"]]
        phases = {p: mean([r["phases"][p] for r in runs]) for p in PHASE_NAMES}
        out[version] = {"runs": len(runs), "wall_s": mean([r["wall_s"] for r in runs]), "phases": phases,
                        "non_training_s": mean([r["wall_s"] - r["phases"]["training"] for r in runs])}
    out["non_training_ratio"] = out["after"]["non_training_s"] / out["before"]["non_training_s"]
    out["wall_ratio"] = out["after"]["wall_s"] / out["before"]["wall_s"]
    return out


def table(summary: dict) -> str:
    b, a = summary["before"], summary["after"]
    rows = ["| phase (s per run) | before | after | after/before |", "|---|---:|---:|---:|"]
    for p in PHASE_NAMES:
        x, y = b["phases"][p], a["phases"][p]
        rows.append(f"| {p} | {x:.2f} | {y:.2f} | {y / x:.2f} |" if x > 0.005 else f"| {p} | {x:.2f} | {y:.2f} | – |")
    rows.append(f"| **non-training** | **{b['non_training_s']:.2f}** | **{a['non_training_s']:.2f}** | "
                f"**{summary['non_training_ratio']:.2f}** |")
    rows.append(f"| wall | {b['wall_s']:.2f} | {a['wall_s']:.2f} | {summary['wall_ratio']:.2f} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default="9d7e730", help="git ref of the 'before' code (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=3, help="runs per sweep (init seeds 1..N)")
    p.add_argument("--steps", type=int, default=2, help="max_steps of every run")
    p.add_argument("--rounds", type=int, default=2, help="timed sweeps per version, interleaved")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--after", default=None, help="git ref of the 'after' code (default: this working tree)")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="instead of one untimed run per version, copy the tiny preset's prepared dataset")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (runs, event logs)")
    a = p.parse_args(argv)
    gptnb = shutil.which("gptnb") or str(Path(sys.executable).parent / "gptnb")
    tmp = Path(tempfile.mkdtemp(prefix="gptnb-overhead-"))
    load_start = os.getloadavg()
    try:
        hook = tmp / "hook"; hook.mkdir()
        (hook / "sitecustomize.py").write_text(HOOK)
        before_commit = prepare_before(a.before, tmp / "before")
        after_commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                      text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True).stdout.strip())
        code = {"before": tmp / "before", "after": ROOT}
        if a.after:
            after_commit = prepare_before(a.after, tmp / "after"); code["after"], dirty = tmp / "after", False
        data = {v: tmp / f"data-{v}" for v in code}
        warmup, sweeps = {}, []
        for version in ("before", "after"):
            if a.warmup:   # prepares each version's dataset and byte-compiles its code
                env = version_env(code[version], hook, data[version], tmp / f"warmup-{version}.jsonl")
                warmup[version] = run_sweep(gptnb, "warmup", [99], a.steps, tmp / f"runs-{version}", tmp, env)
                print(f"warm-up {version}: one run in {warmup[version]:.1f} s", file=sys.stderr)
            else:   # a copy of the prepared dataset (no hash cache), and the code byte-compiled
                source = default_dataset()
                shutil.copytree(source, data[version] / source.name, ignore=shutil.ignore_patterns(".sha256-cache.json"))
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(code[version] / "gptnb")], check=True)
        for k in range(a.rounds):
            order = ("before", "after") if k % 2 == 0 else ("after", "before")
            for version in order:
                events, name = tmp / f"events-{version}-{k}.jsonl", f"round{k}"
                env = version_env(code[version], hook, data[version], events)
                wall = run_sweep(gptnb, name, list(range(1, a.seeds + 1)), a.steps, tmp / f"runs-{version}", tmp, env)
                result = analyse(events, tmp / f"runs-{version}" / name)
                sweeps.append({"version": version, "round": k, "command_wall_s": wall, **result})
                nt = mean([r["wall_s"] - r["phases"]["training"] for r in result["runs"]])
                print(f"round {k} {version}: sweep of {a.seeds} runs in {wall:.1f} s, non-training {nt:.2f} s/run",
                      file=sys.stderr)
        summary = summarise(sweeps)
        command = (f"python bench/run_overhead.py --before {a.before} --seeds {a.seeds} --steps {a.steps} "
                   f"--rounds {a.rounds}" + (f" --after {a.after}" if a.after else "") + ("" if a.warmup else " --no-warmup"))
        result = {"command": command, "cpu": cpu_name(), "cores": os.cpu_count(),
                  "load_average_start": load_start, "load_average_end": os.getloadavg(),
                  "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "before": {"ref": a.before, "commit": before_commit},
                  "after": {"commit": after_commit, "uncommitted_changes": dirty},
                  "sweep_command": f"gptnb sweep roundK --init-seeds 1..{a.seeds} -p max_steps {a.steps}",
                  "warmup_s": warmup, "summary": summary, "sweeps": sweeps}
        out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
        (out / "run-overhead.json").write_text(json.dumps(result, indent=1) + "\n")
        md = (f"# Overhead per run: before ({a.before}) and after ({after_commit[:7]}{'-dirty' if dirty else ''})\n\n"
              f"`{command}` on {result['cpu']} ({result['cores']} cores; load average "
              f"{load_start[0]:.1f} at the start, {result['load_average_end'][0]:.1f} at the end), {result['date']}.\n"
              f"Each version: {a.rounds} sweeps of {a.seeds} runs (`{result['sweep_command']}`), interleaved; "
              f"seconds per run, mean over {summary['before']['runs']} runs.\n\n{table(summary)}\n\n"
              f"Non-training time per run, after/before: **{summary['non_training_ratio']:.2f}**.\n")
        (out / "run-overhead.md").write_text(md)
        print(md)
    finally:
        if a.keep: print(f"kept {tmp}", file=sys.stderr)
        else: shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
