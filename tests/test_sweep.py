"Sweeps: restart runs only what is missing, a failing run does not stop the rest, bad grids stop up front."
import json
import subprocess
from pathlib import Path

import pytest

from gptnb.sweep import Sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def test_interrupted_sweep_reruns_only_missing_runs_and_survives_a_failure(tmp_path):
    sweep = Sweep("s", ["baseline"], [1, 2, 3], root=str(tmp_path), extra={"max_steps": 1})
    first, second, third = (Path(r.run_dir) for r in sweep.runs())
    # run 1 finished before the interruption; run 2 was killed mid-run (its record still says running)
    done = run_sweep(Sweep("s", ["baseline"], [1], root=str(tmp_path), extra={"max_steps": 1}),
                     notebook=ROOT / "nbs" / "train.ipynb")
    assert done[0]["outcome"] == "complete"
    finished_record = (first / "record.json").read_text()
    second.mkdir(parents=True)
    (second / "record.json").write_text(json.dumps({"status": "running", "run_name": second.name}))
    # run 3 will fail: a checkpoint pointer names a checkpoint that is not there
    (third / "checkpoints").mkdir(parents=True)
    (third / "checkpoints" / "latest").write_text("step_000999")

    results = {r["run_name"]: r for r in run_sweep(sweep, notebook=ROOT / "nbs" / "train.ipynb")}
    assert results[first.name]["outcome"] == "skipped"
    assert (first / "record.json").read_text() == finished_record  # untouched
    assert results[second.name]["outcome"] == "complete"
    assert results[third.name]["outcome"] == "failed" and "step_000999" in results[third.name]["error"]
    assert json.loads((third / "record.json").read_text())["status"] == "failed"
    summary = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert len(summary["grids"]) == 2


@pytest.mark.parametrize("args, message", [
    (["--interventions", "baseline,qkv-bais"], "qkv-bais"),
    (["--init-seeds", ""], "init_seeds is empty"),
    (["--preset", "huge"], "huge"),
])
def test_a_bad_sweep_stops_before_running_anything(tmp_path, args, message):
    res = subprocess.run(["gptnb", "sweep", "bad", "--runs-dir", str(tmp_path), *args], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode != 0 and message in res.stderr
    assert not (tmp_path / "bad").exists()


def test_dry_run_prints_one_command_per_missing_run(tmp_path):
    res = subprocess.run(["gptnb", "sweep", "plan", "--runs-dir", str(tmp_path), "--interventions",
                          "baseline,qkv-bias", "--init-seeds", "42,22", "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 4 and all("papermill" in l for l in lines)
    assert not (tmp_path / "plan").exists()
