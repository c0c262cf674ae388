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
        deadline = time.time() + 120
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
    (["--executor", "slurm", "--time", "0"], "time_min=0"),
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
