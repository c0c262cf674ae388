"""Sweeps: every run its own job (submitit), restartable, safe against a second sweep, preemption and requeue, Slurm
submission without a cluster, and the status of a sweep."""
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from gptnb.config import RunSpec
from gptnb.records import read_record, read_records
from gptnb.sweep import Resources, RunJob, Sweep, make_executor, run_sweep, sweep_status
from helpers import small_run_kwargs, synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "nbs" / "train.ipynb"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def gptnb(*args, cwd=ROOT):
    return subprocess.run(["gptnb", *map(str, args)], cwd=cwd, capture_output=True, text=True, env=ENV)


@pytest.mark.slow
def test_interrupted_sweep_reruns_only_missing_runs_and_survives_a_failure(tmp_path):
    sweep = Sweep("s", ["baseline"], [1, 2, 3], root=str(tmp_path), extra={"max_steps": 1})
    first, second, third = (Path(r.run_dir) for r in sweep.runs())
    done = run_sweep(Sweep("s", ["baseline"], [1], root=str(tmp_path), extra={"max_steps": 1}), notebook=NOTEBOOK)
    assert done[0]["outcome"] == "complete"
    finished_record = (first / "record.json").read_text()
    # run 2 was killed mid-run (its record still says running, its process is gone)
    second.mkdir(parents=True)
    (second / "record.json").write_text(json.dumps({"status": "running", "run_name": second.name}))
    # run 3 will fail: a checkpoint pointer names a checkpoint that is not there
    (third / "checkpoints").mkdir(parents=True)
    (third / "checkpoints" / "latest").write_text("step_000999")

    results = {r["run_name"]: r for r in run_sweep(sweep, notebook=NOTEBOOK)}
    assert results[first.name]["outcome"] == "skipped"
    assert (first / "record.json").read_text() == finished_record  # untouched
    assert results[second.name]["outcome"] == "complete"
    assert results[third.name]["outcome"] == "failed" and "step_000999" in results[third.name]["error"]
    summary = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert len(summary["grids"]) == 2


@pytest.mark.slow
def test_a_local_grid_from_outside_the_checkout_then_again_then_one_deleted(tmp_path):
    args = ["sweep", "grid", "--runs-dir", "runs", "--interventions", "baseline,qkv-bias", "--init-seeds", "1,2",
            "--workers", "2", "-p", "max_steps", "2", "--notebook", NOTEBOOK]
    first = gptnb(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    folder = tmp_path / "runs" / "grid"
    assert [r["status"] for r in read_records(folder)] == ["complete"] * 4
    again = gptnb(*args, cwd=tmp_path)
    assert "0 to run" in again.stdout and again.stdout.count("skipped") == 4
    (folder / "tiny-qkv-bias-i1" / "record.json").unlink()
    third = gptnb(*args, cwd=tmp_path)
    outcomes = [line.split()[0] for line in third.stdout.splitlines()[1:] if line.strip()]
    assert "1 to run" in third.stdout and outcomes.count("complete") == 1 and outcomes.count("skipped") == 3, third.stdout
    status = gptnb("sweep", "status", "grid", "--runs-dir", "runs", cwd=tmp_path)
    assert status.returncode == 0 and "4 of 4 runs complete" in status.stdout


@pytest.mark.slow
def test_status_names_what_is_missing_and_fails_until_complete(tmp_path):
    run_sweep(Sweep("st", ["baseline"], [1, 2], root=str(tmp_path), extra={"max_steps": 1}), notebook=NOTEBOOK)
    shutil.rmtree(tmp_path / "st" / "tiny-baseline-i2")
    rows = {r["run_name"]: r["state"] for r in sweep_status(tmp_path, "st")}
    assert rows == {"tiny-baseline-i1": "complete", "tiny-baseline-i2": "missing"}
    res = gptnb("sweep", "status", "st", "--runs-dir", tmp_path)
    assert res.returncode == 1 and "1 of 2 runs complete" in res.stdout


def preempt(job) -> None:
    "Send the job's task what Slurm sends before preempting it or at its time limit: submitit's USR2."
    controller = job._process.pid   # submitit's local controller; the run is its child task
    tasks = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and (p / "status").exists()
             and f"PPid:\t{controller}\n" in (p / "status").read_text()]
    assert len(tasks) == 1, tasks
    os.kill(tasks[0], signal.SIGUSR2)


@pytest.mark.slow
def test_a_preempted_job_is_requeued_and_resumes_bit_exactly(tmp_path):
    data = synthetic_dataset(tmp_path / "data")
    kw = small_run_kwargs(data, max_steps=300)
    kw["train_overrides"].update(checkpoint_every=25, eval_every=25)
    kw["model_overrides"].update(emb_dim=64, n_heads=4)
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        ex = make_executor("local", tmp_path / "jobs", Resources())
        straight = ex.submit(RunJob(RunSpec(run_dir=str(tmp_path / "straight"), **kw), str(NOTEBOOK)))
        assert straight.result()["status"] == "complete"
        job = ex.submit(RunJob(RunSpec(run_dir=str(tmp_path / "preempted"), **kw), str(NOTEBOOK)))
        deadline = time.time() + 600   # a guard against a hang, not a speed limit: CI machines run loaded
        while not (tmp_path / "preempted" / "checkpoints" / "latest").exists():
            assert time.time() < deadline and not job.done()
            time.sleep(0.05)
        preempt(job)
        assert job.result()["status"] == "complete"
    finally:
        del os.environ["OMP_NUM_THREADS"]
    a, b = read_record(tmp_path / "straight"), read_record(tmp_path / "preempted")
    assert b["resumed_from"], "the job was not requeued mid-run"
    assert a["final_weights_sha256"] == b["final_weights_sha256"] and a["test_loss"] == b["test_loss"]


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    "`srun` and `sbatch` stand-ins on PATH: sbatch keeps the script it is given and answers like Slurm."
    bin_dir = tmp_path / "bin"; bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ncp \"$1\" {tmp_path}/submitted.sh\necho 'Submitted batch job 12345'\n")
    for f in bin_dir.iterdir(): f.chmod(f.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return tmp_path / "submitted.sh"


def test_the_slurm_executor_submits_one_array_with_each_runs_resources(tmp_path, fake_slurm):
    sweep = Sweep("cluster", ["baseline", "qkv-bias"], [42, 22], root=str(tmp_path), extra={"nproc": 8})
    res = Resources(gpus_per_node=8, cpus_per_task=12, time_min=240, partition="gpu", parallelism=2,
                    sbatch={"account": "proj"})
    results = run_sweep(sweep, executor="slurm", resources=res, notebook=NOTEBOOK)
    assert [r["outcome"] for r in results] == ["submitted"] * 4
    assert [r["job_id"] for r in results] == [f"12345_{i}" for i in range(4)]
    script = fake_slurm.read_text()
    for line in ("#SBATCH --array=0-3%2", "#SBATCH --gpus-per-node=8", "#SBATCH --ntasks-per-node=8",
                 "#SBATCH --cpus-per-task=12", "#SBATCH --partition=gpu", "#SBATCH --time=240",
                 "#SBATCH --account=proj"):
        assert line in script, (line, script)
    rows = sweep_status(tmp_path, "cluster")
    assert {r["state"] for r in rows} == {"missing"} and rows[0]["job_id"] == "12345_0"


def test_the_slurm_dry_run_shows_each_runs_resources(tmp_path):
    res = gptnb("sweep", "plan", "--runs-dir", tmp_path, "--interventions", "baseline,qkv-bias", "-p", "nproc", "4",
                "--executor", "slurm", "--gpus-per-node", "4", "--time", "90", "--partition", "gpu", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("nproc=4 gpus/node=4") == 2 and "#SBATCH --array=0-1" in res.stdout
    assert not (tmp_path / "plan").exists()


@pytest.mark.parametrize("args, message", [
    (["--interventions", "baseline,qkv-bais"], "qkv-bais"),
    (["--init-seeds", ""], "init_seeds is empty"),
    (["--preset", "huge"], "huge"),
    (["--executor", "slurm", "--time", "0"], "time_min must be an integer ≥ 1, got 0"),
])
def test_a_bad_sweep_stops_before_running_anything(tmp_path, args, message):
    res = gptnb("sweep", "bad", "--runs-dir", tmp_path, *args)
    assert res.returncode != 0 and message in res.stderr
    assert not (tmp_path / "bad").exists()


def test_dry_run_prints_one_command_per_missing_run(tmp_path):
    res = gptnb("sweep", "plan", "--runs-dir", tmp_path, "--interventions", "baseline,qkv-bias", "--init-seeds",
                "42,22", "--dry-run")
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 4 and all("papermill" in l for l in lines)
    assert not (tmp_path / "plan").exists()


@pytest.mark.slow
def test_a_run_of_two_ranks_is_two_tasks_of_one_job(tmp_path):
    "nproc=2 with the local executor: two tasks of one job, each a rank of torchrun's code path (gloo on CPU)."
    data = synthetic_dataset(tmp_path / "data")
    sweep = Sweep("ddp", ["baseline"], [1], root=str(tmp_path), extra={**small_run_kwargs(data, max_steps=6), "nproc": 2})
    results = run_sweep(sweep, notebook=NOTEBOOK)
    assert results[0]["outcome"] == "complete", results
    rec = read_records(tmp_path / "ddp")[0]
    assert rec["world_size"] == 2 and rec["nproc"] == 2 and rec["grad_accum"] == 1


# --- issue 19: a complete run is reused only when it is the run asked for -------------------------------------

def fake_complete(spec, **changes):
    "A complete record for `spec` (optionally recorded with other values) without training."
    from gptnb.records import RunRecord
    from dataclasses import replace
    rec = RunRecord(replace(spec, **{k: v for k, v in changes.items() if hasattr(spec, k)}), status="complete",
                    test_loss=3.0)
    d = {**rec.to_dict(), **{k: v for k, v in changes.items() if not hasattr(spec, k)}}
    Path(spec.run_dir).mkdir(parents=True, exist_ok=True)
    (Path(spec.run_dir) / "record.json").write_text(json.dumps(d))


def test_a_sweep_refuses_complete_runs_trained_with_other_parameters(tmp_path):
    from gptnb.sweep import RunMismatch, plan_commands, slurm_plan
    old = Sweep("mine", ["baseline"], [1, 2, 3], root=str(tmp_path), extra={"max_steps": 2})
    for spec in old.runs(): fake_complete(spec)
    for extra in ({"max_steps": 20}, {"max_steps": 2, "train_overrides": {"schedule": "warmup-cosine"}}):
        new = Sweep("mine", ["baseline"], [1, 2, 3], root=str(tmp_path), extra=extra)
        for plan in (lambda: run_sweep(new, notebook=NOTEBOOK), lambda: plan_commands(new),
                     lambda: slurm_plan(new, Resources())):
            with pytest.raises(RunMismatch, match=r"tiny-baseline-i1.*(max_steps|train_overrides)"): plan()
        assert not (tmp_path / "mine" / "sweep.json").exists() and not (tmp_path / "mine" / ".jobs").exists()
    assert plan_commands(old) == []   # the same runs: reused


def test_a_complete_run_of_another_commit_is_reused_with_a_warning(tmp_path, capsys):
    "Committing a sweep's own records changes the commit: the printed `to go on` command must still run."
    from gptnb.sweep import plan_commands
    sweep = Sweep("mine", ["baseline"], [1], root=str(tmp_path), extra={"max_steps": 2})
    fake_complete(sweep.runs()[0], git_commit="0" * 40 + "-dirty")
    assert plan_commands(sweep) == []   # reused
    err = capsys.readouterr().err
    assert "warning" in err and "0" * 40 + "-dirty" in err and "tiny-baseline-i1" in err, err


def test_a_sweep_refuses_a_complete_run_of_another_gptnb_version_or_intervention_source(tmp_path):
    from gptnb.sweep import RunMismatch, plan_commands
    sweep = Sweep("mine", ["baseline"], [1], root=str(tmp_path), extra={"max_steps": 2})
    fake_complete(sweep.runs()[0], versions={"gptnb": "0.0.1"})
    with pytest.raises(RunMismatch, match=r"gptnb_version='0.0.1' there"): plan_commands(sweep)
    ideas = ROOT / "examples" / "ideas.py"
    user = Sweep("user", [f"{ideas}:rmsnorm"], [1], root=str(tmp_path), extra={"max_steps": 2})
    fake_complete(user.runs()[0], intervention_sources=[{"name": f"{ideas}:rmsnorm", "sha256": "0" * 64}])
    with pytest.raises(RunMismatch, match="intervention_sources"): plan_commands(user)


def test_a_sweep_refuses_a_complete_run_trained_by_other_code(tmp_path):
    "Issue 19: the code version is part of a run's identity: gptnb's code hash, not the checkout's commit."
    from gptnb.records import library_versions
    from gptnb.sweep import RunMismatch, plan_commands
    sweep = Sweep("mine", ["baseline"], [1], root=str(tmp_path), extra={"max_steps": 2})
    fake_complete(sweep.runs()[0], versions={**library_versions(), "gptnb_code": "f" * 64})
    with pytest.raises(RunMismatch, match=r"gptnb_code='f{64}' there"): plan_commands(sweep)
    fake_complete(sweep.runs()[0], versions=library_versions(), git_commit="0" * 40)
    assert plan_commands(sweep) == []   # the same code at another commit: reused (with a warning)


def test_the_papermill_dry_run_names_the_notebook_that_would_run(tmp_path, monkeypatch, capsys):
    import gptnb.cli as cli
    monkeypatch.chdir(tmp_path)   # outside the checkout: the packaged notebook
    assert cli.main(["sweep", "plan", "--runs-dir", "runs", "--dry-run"]) == 0
    words = capsys.readouterr().out.split()
    notebook = Path(words[words.index("papermill") + 1])
    assert notebook.is_absolute() and notebook.is_file() and notebook.name == "train.ipynb", words


def test_status_shows_the_step_a_running_run_has_reached(tmp_path, capsys):
    import gptnb.cli as cli
    from gptnb.records import lock_run_folder
    sweep = Sweep("st", ["baseline"], [1], root=str(tmp_path), extra={"max_steps": 20})
    spec = sweep.runs()[0]
    folder = Path(spec.run_dir); folder.mkdir(parents=True)
    fake_complete(spec); rec = json.loads((folder / "record.json").read_text())
    (folder / "record.json").write_text(json.dumps({**rec, "status": "running", "test_loss": None}))
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 5.0}) + "\n" for s in (1, 2, 3)))
    (tmp_path / "st" / "sweep.json").write_text(json.dumps({"grids": [{"runs": [spec.run_name]}]}))
    with lock_run_folder(folder):   # the run's process holds it: running, not interrupted
        rows = sweep_status(tmp_path, "st")
        assert cli.main(["sweep", "status", "st", "--runs-dir", str(tmp_path)]) == 1
    assert rows[0]["state"] == "running" and rows[0]["step"] == "3/20"
    assert "step 3/20" in capsys.readouterr().out


def test_the_cli_sweep_and_dry_run_refuse_a_mismatch_before_any_work(tmp_path):
    old = Sweep("mine", ["baseline"], [1], root=str(tmp_path), extra={"max_steps": 2})
    fake_complete(old.runs()[0])
    for extra in ([], ["--dry-run"]):
        r = gptnb("sweep", "mine", "--interventions", "baseline", "--init-seeds", "1", "-p", "max_steps", "200",
                  "--runs-dir", tmp_path, *extra)
        # exit 3, as `gptnb run` refuses a changed run folder: a script can tell it from bad flags (2) and failures (1)
        assert r.returncode == 3 and "max_steps" in r.stderr and "tiny-baseline-i1" in r.stderr, r.stderr
    assert not (tmp_path / "mine" / "sweep.json").exists()


def test_a_dry_run_with_nothing_to_run_says_so(tmp_path):
    done = Sweep("mine", ["baseline"], [1], root=str(tmp_path), extra={"max_steps": 2})
    fake_complete(done.runs()[0])
    r = gptnb("sweep", "mine", "--interventions", "baseline", "--init-seeds", "1", "-p", "max_steps", "2",
              "--runs-dir", tmp_path, "--dry-run")
    assert r.returncode == 0 and "nothing to run" in r.stdout and "mine" in r.stdout, (r.stdout, r.stderr)


def test_the_slurm_plan_takes_its_memory_from_the_command_line(tmp_path):
    r = gptnb("sweep", "big", "--interventions", "baseline", "--executor", "slurm", "--mem-gb", "64", "--dry-run",
              "--runs-dir", tmp_path)
    assert r.returncode == 0 and "--mem=64G" in r.stdout, (r.stdout, r.stderr)


@pytest.mark.parametrize("name", [".", "..", "a/b", "", "../x"])
def test_a_sweep_name_is_one_path_component(tmp_path, name):
    with pytest.raises(ValueError, match="sweep name"): Sweep(name, ["baseline"], [1], root=str(tmp_path))


def test_a_relative_dataset_dir_that_exists_here_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "tok").mkdir(parents=True)
    sweep = Sweep("s", ["baseline"], [1], root="runs", extra={"dataset_dir": "data/tok"})
    assert sweep.extra["dataset_dir"] == str(tmp_path / "data" / "tok")
    assert all(r.dataset_dir == str(tmp_path / "data" / "tok") for r in sweep.runs())
    hub = Sweep("s", ["baseline"], [1], root="runs", extra={"dataset_dir": "hf:roneneldan/TinyStories"})
    assert hub.extra["dataset_dir"] == "hf:roneneldan/TinyStories"   # marked: a Hugging Face id stays one
    with pytest.raises(FileNotFoundError, match="write hf:roneneldan/TinyStories"):   # unmarked: never a download
        Sweep("s", ["baseline"], [1], root="runs", extra={"dataset_dir": "roneneldan/TinyStories"})


def test_status_shows_code_versions_and_the_sweep_warns_when_they_differ(tmp_path):
    from gptnb.sweep import code_versions_warning
    sweep = Sweep("s", ["baseline", "qkv-bias"], [1], root=str(tmp_path), extra={"max_steps": 2})
    a, b = sweep.runs()
    fake_complete(a, git_commit=None); fake_complete(b, git_commit="abc-dirty")
    (tmp_path / "s" / "sweep.json").write_text(json.dumps({"grids": [{"runs": [a.run_name, b.run_name]}]}))
    rows = sweep_status(tmp_path, "s")
    assert [r["code_version"] for r in rows] == [None, "abc-dirty"]
    warning = code_versions_warning(sweep)
    assert "abc-dirty" in warning and "None" in warning and a.run_name in warning
    fake_complete(a, git_commit="abc-dirty")
    assert code_versions_warning(sweep) is None


def test_the_slurm_dry_run_is_what_would_be_submitted(tmp_path):
    import sys
    from gptnb.sweep import slurm_plan
    sweep = Sweep("mine", ["baseline"], [1], root=str(tmp_path), extra={"max_steps": 2})
    plan = slurm_plan(sweep, Resources())
    assert "JOBS_FOLDER" not in plan and str(tmp_path / "mine" / ".jobs") in plan
    assert sys.executable in plan and "--job-name=gptnb-mine" in plan and "--mem=" in plan
    many = Sweep("big", ["baseline"], [1], preset="gpt2-small", root=str(tmp_path), extra={"nproc": 8})
    assert "warning" in slurm_plan(many, Resources()) and "gpus" in slurm_plan(many, Resources())
    assert "warning" not in slurm_plan(many, Resources(gpus_per_node=8))


def test_a_sweep_succeeds_when_a_run_busy_elsewhere_ends_complete(tmp_path, monkeypatch):
    import gptnb.sweep as sw
    sweep = Sweep("s", ["baseline"], [1], root=str(tmp_path), extra={"max_steps": 2})
    spec = sweep.runs()[0]
    results = [{"run_name": spec.run_name, "outcome": "busy", "error": "busy elsewhere", "test_loss": None}]
    calls = []
    def other_process_finishes(folder):
        calls.append(folder); fake_complete(spec); return False
    monkeypatch.setattr(sw, "_held_elsewhere", other_process_finishes)
    out = sw.wait_for_busy(sweep, results, poll_s=0.01)
    assert out[0]["outcome"] == "skipped" and out[0]["test_loss"] == 3.0 and calls   # complete, run elsewhere


def test_the_warning_and_status_tell_gptnb_versions_apart(tmp_path):
    from gptnb.sweep import code_versions_warning
    sweep = Sweep("s", ["baseline", "qkv-bias"], [1], root=str(tmp_path), extra={"max_steps": 2})
    a, b = sweep.runs()
    fake_complete(a, git_commit=None, versions={"gptnb": "0.0.1"})
    fake_complete(b, git_commit=None, versions={"gptnb": "0.0.2"})
    (tmp_path / "s" / "sweep.json").write_text(json.dumps({"grids": [{"runs": [a.run_name, b.run_name]}]}))
    assert [r["gptnb_version"] for r in sweep_status(tmp_path, "s")] == ["0.0.1", "0.0.2"]
    assert "gptnb 0.0.1" in code_versions_warning(sweep) and "gptnb 0.0.2" in code_versions_warning(sweep)


@pytest.mark.parametrize("name", ["..", ".", "a/b"])
def test_gptnb_run_refuses_a_name_that_leaves_the_runs_folder(tmp_path, name):
    r = gptnb("run", name, "--runs-dir", tmp_path / "runs", "-p", "max_steps", "1")
    assert r.returncode == 2 and "one folder name" in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "record.json").exists()


def test_gptnb_run_resolves_a_relative_dataset_dir_where_the_user_stands(tmp_path, monkeypatch):
    import gptnb.cli as cli
    from gptnb.cli import run_spec_here
    fetched = []   # a Hub id is fetched before any kernel starts; here without a network, so the fetch is recorded
    monkeypatch.setattr(cli, "resolve_dataset_dir", fetched.append)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mydata").mkdir()
    assert run_spec_here({"dataset_dir": "mydata"}, "x", "runs").dataset_dir == str(tmp_path / "mydata")
    assert fetched == []
    with pytest.raises(FileNotFoundError, match="write hf:owner/name"):   # unmarked: a folder that is not here
        run_spec_here({"dataset_dir": "owner/name"}, "x", "runs")
    assert fetched == []
    assert run_spec_here({"dataset_dir": "hf:owner/name"}, "x", "runs").dataset_dir == "hf:owner/name"   # marked: an id
    assert fetched == ["hf:owner/name"]
    assert run_spec_here({}, "x", "runs").run_dir == str(tmp_path / "runs" / "x")


def test_one_worker_runs_each_job_from_the_sweeps_own_process_with_its_log(tmp_path, monkeypatch):
    import gptnb.sweep as sweep_module
    pids = []
    def run_notebook(spec, notebook=None, log_output=True):   # stands in for papermill: prints, fails for seed 2
        pids.append(os.getpid()); print(f"training {spec.run_name}")
        if spec.init_seed == 2: raise RuntimeError("the kernel died")
        return {"status": "complete", "test_loss": 1.5}
    monkeypatch.setattr(sweep_module, "run_notebook", run_notebook)
    results = run_sweep(Sweep("s", ["baseline"], [1, 2, 3], root=str(tmp_path), extra={"max_steps": 1}), notebook=NOTEBOOK)
    assert pids == [os.getpid()] * 3   # no worker process per run
    assert [(r["outcome"], r["job_id"], r["error"]) for r in results] == [
        ("complete", None, None), ("failed", None, "the kernel died"), ("complete", None, None)]
    for r in results:   # what each run printed is in its own log, not in the sweep's output
        assert (tmp_path / "s" / ".jobs" / f"{r['run_name']}.log").read_text() == f"training {r['run_name']}\n"


def test_the_kernel_is_stopped_once_its_notebook_is_done_without_pythons_teardown(tmp_path):
    "The record is written by the notebook's own cells; a kernel that finalised Python after them only cost time."
    import nbformat
    from gptnb.sweep import find_train_notebook, run_notebook
    data, marker = synthetic_dataset(tmp_path / "data"), tmp_path / "finalised"
    nb = nbformat.read(find_train_notebook(), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(f"import atexit; atexit.register(open, {str(marker)!r}, 'w')"))
    (tmp_path / "nbs").mkdir(); nbformat.write(nb, tmp_path / "nbs" / "train.ipynb")
    spec = RunSpec(run_dir=str(tmp_path / "runs" / "r"), **small_run_kwargs(data, max_steps=1))
    record = run_notebook(spec, notebook=tmp_path / "nbs" / "train.ipynb", log_output=False)
    assert record["status"] == "complete" and (tmp_path / "runs" / "r" / "train.complete.ipynb").is_file()
    assert not marker.exists()   # killed at once: atexit never ran


def test_a_sweep_moved_to_another_machine_accepts_its_runs_of_the_same_user_file(tmp_path):
    "The file's place is not the run's identity (its sha256 is): runs recorded at /laptop/... are the same arm here."
    import hashlib
    from gptnb.sweep import RunMismatch, plan_commands
    ideas = ROOT / "examples" / "ideas.py"
    user = Sweep("user", [f"{ideas}:rmsnorm"], [1], root=str(tmp_path), extra={"max_steps": 2})
    same = [{"name": "rmsnorm", "sha256": hashlib.sha256(ideas.read_bytes()).hexdigest()}]
    fake_complete(user.runs()[0], intervention="/laptop/proj/examples/ideas.py:rmsnorm", intervention_sources=same)
    assert plan_commands(user) == []   # complete: nothing to run, no mismatch
    fake_complete(user.runs()[0], intervention="/laptop/proj/examples/other.py:rmsnorm", intervention_sources=same)
    with pytest.raises(RunMismatch, match="intervention"): plan_commands(user)   # another file is another arm
