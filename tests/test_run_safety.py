"""Records you can trust. Each test is a defect an earlier version had: a finished run destroyed by a typo, two
processes in one folder, a full disk, bad input with unclear errors, a sweep that cared about the working directory."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gptnb.config import RunSpec, resolve_precision
from gptnb.records import read_record, read_records
from gptnb.sweep import Sweep, run_sweep
from gptnb.launch import run_training
from helpers import small_run_kwargs, synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "nbs" / "train.ipynb"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.mktemp("data"))


def small(data, run_dir, max_steps=20, **train_changes) -> RunSpec:
    return RunSpec(run_dir=str(run_dir), **small_run_kwargs(data, max_steps=max_steps, **train_changes))


def cli(spec: RunSpec) -> list[str]:
    from gptnb.launch import spec_to_cli
    return [sys.executable, "-m", "gptnb.train", *spec_to_cli(spec)]


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    "A complete run made by `gptnb run` (executed notebook and all)."
    root = tmp_path_factory.mktemp("runs")
    res = subprocess.run(["gptnb", "run", "done1", "--runs-dir", str(root), "-p", "max_steps", "2"],
                         capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr[-3000:]
    return root / "done1"


@pytest.mark.slow
def test_gptnb_run_keeps_the_whole_executed_notebook(finished):
    "The protected copy `gptnb run` leaves is the executed notebook as papermill last wrote it, its last cell included."
    assert (finished / "train.complete.ipynb").read_bytes() == (finished / "train.ipynb").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("args, code", [(["-p", "init_seed", "abc"], 2), (["-p", "intervention", "qkv-bias"], 3),
                                        (["-p", "max_steps", "2"], 3)])
def test_a_command_pointed_at_a_finished_run_changes_nothing(finished, args, code):
    before = snapshot(finished)
    res = subprocess.run(["gptnb", "run", "done1", "--runs-dir", str(finished.parent), *args],
                         capture_output=True, text=True, env=ENV)
    assert res.returncode == code, res.stderr[-2000:]
    assert ("abc" if code == 2 else "never overwritten") in res.stderr
    assert snapshot(finished) == before   # record, weights, executed notebook: byte for byte


@pytest.mark.slow
def test_the_torchrun_door_refuses_a_finished_run_too(finished):
    before = snapshot(finished)
    res = subprocess.run([sys.executable, "-m", "gptnb.train", "--run-dir", str(finished), "--intervention", "qkv-bias",
                          "--max-steps", "2"], capture_output=True, text=True, env=ENV)
    assert res.returncode == 3 and "never overwritten" in res.stderr
    assert snapshot(finished) == before


def test_restart_moves_the_finished_run_aside(data, tmp_path):
    spec = small(data, tmp_path / "r", max_steps=3)
    first = run_training(spec)
    again = run_training(RunSpec(**{**spec.to_dict(), "restart": True, "max_steps": 4}))
    assert again["status"] == "complete" and again["total_steps"] == 4
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("r.replaced-")]
    assert len(aside) == 1 and read_record(aside[0])["final_weights_sha256"] == first["final_weights_sha256"]


@pytest.mark.slow
def test_two_processes_on_one_run_folder(data, tmp_path):
    spec = small(data, tmp_path / "shared", max_steps=300)
    a = subprocess.Popen(cli(spec), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600   # a guard against a hang, not a speed limit: CI machines run loaded
    while not (tmp_path / "shared" / "record.json").exists():
        assert time.time() < deadline and a.poll() is None
        time.sleep(0.02)
    b = subprocess.run(cli(spec), env=ENV, capture_output=True, text=True)
    assert b.returncode == 3 and f"in use by pid {a.pid}" in b.stderr
    assert a.wait() == 0
    rec = read_record(tmp_path / "shared")
    assert rec["status"] == "complete"
    rows = (tmp_path / "shared" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == list(range(300))


@pytest.mark.slow
def test_two_sweeps_on_one_folder_run_each_run_once(tmp_path):
    cmd = ["gptnb", "sweep", "twice", "--runs-dir", str(tmp_path), "--interventions", "baseline,qkv-bias",
           "--init-seeds", "1,2", "-p", "max_steps", "2", "--notebook", str(NOTEBOOK)]
    procs = [subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outs = [p.communicate() for p in procs]
    # a run busy in the other sweep is waited for: each sweep succeeds, every run being complete at its end
    assert [p.returncode for p in procs] == [0, 0], outs
    log = json.loads((tmp_path / "twice" / "sweep.json").read_text())
    executed = [r["run_name"] for g in log["grids"] for r in g["results"] if r["outcome"] == "complete"]
    assert sorted(executed) == sorted(set(executed)) and len(executed) == 4, outs   # each run executed exactly once
    assert [r["status"] for r in read_records(tmp_path / "twice")] == ["complete"] * 4


def test_a_full_disk_ends_with_a_failed_record_and_no_temp_files(data, tmp_path):
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        spec = small(data, mnt / "run", max_steps=200, checkpoint_every=1)
        spec.model_overrides.update(emb_dim=64, n_heads=2)
        res = subprocess.run(cli(spec), env=ENV, capture_output=True, text=True)
        assert res.returncode == 1, res.stderr[-2000:]
        rec = json.loads((mnt / "run" / "record.json").read_text())
        assert rec["status"] == "failed" and "No space left on device" in rec["error"], rec["error"]
        debris = [p.name for p in (mnt / "run").rglob("*") if ".tmp" in p.name or p.name == ".record-reserve"]
        assert debris == []
    finally:
        subprocess.run(["umount", str(mnt)])


@pytest.mark.slow
def test_a_sweep_keeps_the_users_thread_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run_sweep(Sweep("threads", ["baseline"], [1], root=str(tmp_path), extra={"max_steps": 1}), notebook=NOTEBOOK)
    grid = json.loads((tmp_path / "threads" / "sweep.json").read_text())["grids"][0]
    assert grid["threads_per_run"] == 1 and "yours" in grid["threads_from"]
    assert read_records(tmp_path / "threads")[0]["torch_threads"] == 1


@pytest.mark.parametrize("args, says", [
    (["run", "x", "-p", "device", "gpu"], "valid choices"),
    (["run", "x", "-p", "train_overrides", '{"lr": "abc"}'], "TrainConfig.lr='abc'"),
    (["run", "x", "-p", "init_sed", "67"], "init_sed"),
    (["sweep", "x", "--workers", "0"], "workers must be an integer ≥ 1, got 0"),
])
def test_bad_input_is_named_before_any_work(tmp_path, args, says):
    res = subprocess.run(["gptnb", *args, "--runs-dir", str(tmp_path)], capture_output=True, text=True, env=ENV)
    assert res.returncode == 2 and says in res.stderr, res.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_a_garbage_sweep_log_stops_the_sweep_before_any_run(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "sweep.json").write_text("{not json")
    res = subprocess.run(["gptnb", "sweep", "g", "--runs-dir", str(tmp_path), "-p", "max_steps", "1",
                          "--notebook", str(NOTEBOOK)], capture_output=True, text=True, env=ENV)
    assert res.returncode == 2 and "sweep.json is not valid JSON" in res.stderr
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["sweep.json"]


@pytest.mark.slow
def test_a_dataset_folder_without_tokens_through_gptnb_run_leaves_a_failed_record(tmp_path):
    (tmp_path / "nowhere").mkdir()   # a missing folder is refused before the kernel (test_cli_doors); an empty one fails in it
    res = subprocess.run(["gptnb", "run", "nodata", "--runs-dir", str(tmp_path), "-p", "dataset_dir",
                          str(tmp_path / "nowhere"), "-p", "max_steps", "1"], capture_output=True, text=True, env=ENV)
    assert res.returncode == 1
    rec = read_record(tmp_path / "nodata")
    assert rec["status"] == "failed" and "nowhere" in rec["error"]


def test_the_torchrun_plan_carries_every_parameter(tmp_path):
    res = subprocess.run(["gptnb", "sweep", "plan", "--runs-dir", str(tmp_path), "-p", "nproc", "8", "-p",
                          "train_overrides", '{"lr": 0.001}', "--dry-run", "--launcher", "torchrun"],
                         capture_output=True, text=True, check=True)
    line = res.stdout.strip()
    assert "--nproc_per_node 8" in line and '--train-overrides \'{"lr": 0.001}\'' in line


def test_precision_auto_follows_the_hardware(monkeypatch):
    import gptnb.config as C
    monkeypatch.setattr(C, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(C, "cpu_flags", lambda: {"avx2"})
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", "cpu") == "fp32"


def test_the_record_names_the_resolved_precision_and_the_hardware(data, tmp_path):
    rec = run_training(small(data, tmp_path / "p", max_steps=2, precision="auto"))
    assert rec["precision"] in ("fp32", "bf16") and rec["train_config"]["precision"] == rec["precision"]
    assert rec["hardware"]["cpu"] and rec["hardware"]["cpu_capability"] and rec["torch_threads"] >= 1


KILL_AT = """
import os, signal, sys, json
from pathlib import Path
import gptnb.checkpoints as ck
from gptnb.config import RunSpec
from gptnb.launch import run_training
moment = sys.argv[2]
def kill(): os.kill(os.getpid(), signal.SIGKILL)
if moment == "before install":
    ck._install = lambda tmp, final: kill()
elif moment == "never":
    pass
elif moment == "after the pointers":
    ck._prune = lambda *a: kill()
else:
    write = ck.write_text_atomic
    def pointer(path, text, *a, **k):
        if Path(path).name == moment: kill()
        return write(path, text, *a, **k)
    ck.write_text_atomic = pointer
run_training(RunSpec.from_dict(json.loads(sys.argv[1])))
"""


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    "An uninterrupted run with a checkpoint every 2 of its 4 steps (one thread, in a process of its own)."
    spec = small(data, tmp_path_factory.mktemp("ref") / "run", max_steps=4, checkpoint_every=2, eval_every=2)
    subprocess.run([sys.executable, "-c", KILL_AT, json.dumps(spec.to_dict()), "never"], env=ENV, check=True,
                   capture_output=True)
    return read_record(spec.run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["before install", "latest", "best", "after the pointers"])
def test_a_kill_during_the_first_checkpoint_write_resumes_bit_exactly(data, tmp_path, reference, moment):
    spec = small(data, tmp_path / "run", max_steps=4, checkpoint_every=2, eval_every=2)
    killed = subprocess.run([sys.executable, "-c", KILL_AT, json.dumps(spec.to_dict()), moment], env=ENV,
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert read_record(tmp_path / "run")["status"] in ("running", "interrupted")   # not complete: killed
    subprocess.run([sys.executable, "-c", KILL_AT, json.dumps(spec.to_dict()), "never"], env=ENV, check=True,
                   capture_output=True)   # the identical rerun
    rec = read_record(spec.run_dir)
    assert rec["status"] == "complete"
    assert rec["final_weights_sha256"] == reference["final_weights_sha256"]
    assert rec["test_loss"] == reference["test_loss"]


# gptnb evaluate on damaged weights (issue 19)

@pytest.fixture(scope="module")
def one_step_run(data, tmp_path_factory):
    spec = small(data, tmp_path_factory.mktemp("eval") / "run", max_steps=1)
    assert run_training(spec)["status"] == "complete"
    return Path(spec.run_dir)


EVAL = dict(batches=1, batch_size=1, context_length=32, start_token=1)   # a window the tiny data holds


def evaluate(*args):
    return subprocess.run([sys.executable, "-m", "gptnb.cli", "evaluate", *map(str, args)], env=ENV,
                          capture_output=True, text=True)


def test_evaluate_checks_a_runs_final_weights_against_its_record(one_step_run, data, tmp_path):
    from gptnb.evaluate import evaluate_checkpoint
    assert evaluate_checkpoint(one_step_run, data, device="cpu", batches=1, context_length=32, start_token=1).loss > 0   # intact: scored
    run = tmp_path / "run"
    import shutil; shutil.copytree(one_step_run, run)
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open
    with safe_open(str(run / "model.safetensors"), "pt") as f: meta = f.metadata()
    state = load_file(run / "model.safetensors")
    name = sorted(state)[0]; state[name] = torch.full_like(state[name], float("nan"))
    save_file(state, run / "model.safetensors", metadata=meta)
    with pytest.raises(ValueError, match="sha256"): evaluate_checkpoint(run, data, device="cpu", batches=1, context_length=32, start_token=1)
    res = evaluate(run, "--dataset-dir", data, "--device", "cpu", "--batches", "1", "--context-length", "32", "--start-token", "0")
    assert res.returncode == 2 and "final_weights_sha256" in res.stderr and "nan" not in res.stdout, res.stderr


@pytest.mark.parametrize("content", [b"garbage" * 10, b"\x80\x04\x95" + bytes(40)])   # junk, a pickle's start
def test_evaluate_names_a_weights_file_that_is_not_safetensors(data, tmp_path, content):
    bad = tmp_path / "model.safetensors"; bad.write_bytes(content)
    res = evaluate(bad, "--dataset-dir", data, "--device", "cpu")
    assert res.returncode == 2 and str(bad) in res.stderr and "safetensors" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


# issue 19: defects 10, 11 and 14 (the run side)

def test_a_run_name_that_leaves_the_runs_folder_writes_nothing_anywhere(data, tmp_path, monkeypatch):
    from gptnb.launch import main
    here = tmp_path / "a" / "b"; here.mkdir(parents=True)
    monkeypatch.chdir(here)
    args = ["--dataset-dir", str(data), "--max-steps", "1", "--model-overrides",
            json.dumps(small_run_kwargs(data)["model_overrides"]), "--train-overrides",
            json.dumps(small_run_kwargs(data)["train_overrides"])]
    for name in ("../../x", "..", "."):
        assert main(["--run-name", name, *args]) == 2
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["a", "a/b"]


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"]); p.wait()
    return p.pid


def test_a_nearly_full_disk_at_start_is_a_clear_error_with_a_record(data, tmp_path, monkeypatch):
    import errno
    import gptnb.records as R
    real = R.write_bytes_atomic
    def full(path, data_):
        if len(data_) > 200_000: raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data_)
    monkeypatch.setattr(R, "write_bytes_atomic", full)
    spec = small(data, tmp_path / "run", max_steps=2)
    with pytest.raises(R.NoSpaceToStart, match="free") as e: run_training(spec)
    assert "run" in str(e.value) and "MiB" in str(e.value)
    rec = read_record(tmp_path / "run")
    assert rec["status"] == "failed" and "No space left" in rec["error"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock", "record.json"]


def test_a_metrics_file_cut_mid_way_never_ends_complete(data, tmp_path):
    import shutil
    straight = run_training(small(data, tmp_path / "straight", max_steps=20, checkpoint_every=5))
    assert straight["status"] == "complete"
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "straight", cut)
    (cut / "model.safetensors").unlink()
    rows = (cut / "metrics.jsonl").read_text().splitlines()
    (cut / "metrics.jsonl").write_text("\n".join(rows[:8]) + "\n")      # steps 8 to 19 lost; the newest checkpoint is at 15
    from gptnb.records import update_record
    update_record(cut, status="running")
    with pytest.raises(ValueError, match="steps 8.*14"): run_training(small(data, cut, max_steps=20, checkpoint_every=5))
    rec = read_record(cut)
    assert rec["status"] == "failed" and "metrics.jsonl" in rec["error"]


def test_metrics_reach_the_disk_before_each_checkpoint(data, tmp_path, monkeypatch):
    import gptnb.records as R
    import gptnb.train as T
    events = []
    real_sync, real_save = R.MetricsLog.sync, T.save_checkpoint
    monkeypatch.setattr(R.MetricsLog, "sync", lambda self: (events.append("sync"), real_sync(self))[1])
    monkeypatch.setattr(T, "save_checkpoint", lambda *a, **k: (events.append("checkpoint"), real_save(*a, **k))[1])
    run_training(small(data, tmp_path / "run", max_steps=6, checkpoint_every=2))
    assert events[:4] == ["sync", "checkpoint", "sync", "checkpoint"]


def test_temp_files_of_killed_writes_are_cleaned_and_resumes_are_all_kept(data, tmp_path):
    import shutil
    from gptnb.records import update_record
    run_training(small(data, tmp_path / "straight", max_steps=20, checkpoint_every=5))
    run = tmp_path / "run"
    shutil.copytree(tmp_path / "straight", run)
    (run / "model.safetensors").unlink()
    rows = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(rows[:17]) + "\n")
    update_record(run, status="running", resumed_from=[5])              # resumed once already, at step 5
    stale = [run / f".record-reserve.{dead_pid()}-0123abcd.tmp", run / f".metrics.jsonl.{dead_pid()}-89abcdef.tmp"]
    for p in stale: p.write_bytes(bytes(1000))
    rec = run_training(small(data, run, max_steps=20, checkpoint_every=5))
    assert rec["status"] == "complete" and read_record(run)["resumed_from"] == [5, 15]
    assert not any(p.exists() for p in stale)
    assert not [p.name for p in run.rglob("*.tmp")]


def test_an_orphaned_process_writes_no_checkpoint_once_its_parents_lock_is_gone(data, tmp_path, monkeypatch):
    from gptnb.records import LOCK_ENV, RunFolderLost, RunLock
    from gptnb.train import train
    spec = small(data, tmp_path / "run", max_steps=6, checkpoint_every=2)
    parent = RunLock(tmp_path / "run")
    monkeypatch.setenv(LOCK_ENV, parent.child_env()[LOCK_ENV])
    parent.release()                                                 # the parent `gptnb run` was killed
    with pytest.raises(RunFolderLost, match="no longer holds"): train(spec)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_records_store_no_absolute_paths_and_old_ones_still_read(data, tmp_path):
    rec = run_training(small(data, tmp_path / "runs" / "r", max_steps=2))
    stored = json.loads((tmp_path / "runs" / "r" / "record.json").read_text())
    assert not os.path.isabs(stored["run_dir"]) and not os.path.isabs(stored["dataset"]["path"]), stored
    assert str(tmp_path) not in json.dumps(stored)
    back = read_record(tmp_path / "runs" / "r")
    assert Path(back["dataset"]["path"]).resolve() == Path(data).resolve()
    assert Path(back["run_dir"]) == tmp_path / "runs" / "r"
    old = {**stored, "run_dir": "/somewhere/else/r", "dataset": {**stored["dataset"], "path": str(data)}}
    (tmp_path / "runs" / "r" / "record.json").write_text(json.dumps(old))
    assert read_record(tmp_path / "runs" / "r")["dataset"]["path"] == str(data)


def test_a_run_whose_dataset_lies_in_the_cache_is_re_scored_from_its_record(data, tmp_path, monkeypatch):
    "The record names the dataset as `$GPTNB_DATA_DIR/…`; re-scoring the run reads it there (the wheel test found it did not)."
    from gptnb.evaluate import score_run
    monkeypatch.setenv("GPTNB_DATA_DIR", str(Path(data).parent))
    rec = run_training(small(data, tmp_path / "runs" / "r", max_steps=2))
    stored = json.loads((tmp_path / "runs" / "r" / "record.json").read_text())
    assert stored["dataset"]["path"] == "$GPTNB_DATA_DIR/" + Path(data).name
    assert round(score_run(tmp_path / "runs" / "r").loss, 6) == rec["test_loss"]


def test_progress_renders_once_when_output_is_not_a_terminal(data, tmp_path, capsys):
    from gptnb.train import train
    train(small(data, tmp_path / "run", max_steps=20))
    out, err = capsys.readouterr()
    assert err == "" and len(out.strip().splitlines()) == 1 and "20/20 steps" in out, (out, err)


def test_run_plots_carry_test_loss_and_the_unigram_line(data, tmp_path):
    from gptnb.records import loss_references, plot_metrics
    rec = run_training(small(data, tmp_path / "run", max_steps=2))
    refs = loss_references({**rec, "unigram_entropy": 3.9})
    assert refs == {"test loss": rec["test_loss"], "unigram entropy": 3.9}
    assert [p.name for p in plot_metrics(tmp_path / "run", {**rec, "unigram_entropy": 3.9})][0] == "loss.png"


def papermill(*args, cwd):
    return subprocess.run(["papermill", str(NOTEBOOK), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=ENV)


@pytest.mark.slow
@pytest.mark.parametrize("params", [["-p", "init_sed", "67"], ["-p", "init_seed", "67"],
                                    ["-p", "intervention", "qkv-bias", "--inject-output-path"]])
def test_the_papermill_door_refuses_a_finished_run_and_keeps_its_notebook(finished, tmp_path, params):
    keep = finished / "train.complete.ipynb"
    assert keep.is_file() and keep.stat().st_mode & 0o222 == 0     # read-only: papermill cannot open it to write
    kept = keep.read_bytes()
    assert kept.count(b'"execution_count": ') >= 9      # the executed notebook, cell by cell
    before = {k: v for k, v in snapshot(finished).items() if k != "train.ipynb"}
    res = papermill(finished / "train.ipynb", *params, cwd=tmp_path)
    assert res.returncode != 0
    assert f"{finished} holds the complete run 'done1'" in res.stderr and "train.complete.ipynb" in res.stderr, res.stderr[-3000:]
    assert {k: v for k, v in snapshot(finished).items() if k != "train.ipynb"} == before   # record, weights, the copy
    assert list(tmp_path.iterdir()) == []                 # no record anywhere (no runs/ folder made)


@pytest.mark.slow
def test_a_bad_notebook_parameter_writes_no_record(tmp_path):
    res = papermill(tmp_path / "out.ipynb", "-p", "init_sed", "67", cwd=tmp_path)
    assert res.returncode != 0 and "init_sed" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ipynb"]
