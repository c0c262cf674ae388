"The experiment notebook under papermill: the README's commands, records beside the output, bad parameters."
import json
import subprocess
import sys
from pathlib import Path

import pytest

# every test here executes the notebook under papermill in a fresh kernel: several seconds each
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["-p", "max_steps", "2"]


def papermill(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "papermill", str(ROOT / "nbs" / "train.ipynb"), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True)


def test_gptnb_run_makes_the_folder_and_writes_a_complete_record(tmp_path):
    res = subprocess.run(["gptnb", "run", "quick", "--runs-dir", str(tmp_path), *QUICK, "-p", "init_seed", "67"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    run_dir = tmp_path / "quick"
    rec = json.loads((run_dir / "record.json").read_text())
    assert rec["status"] == "complete" and rec["init_seed"] == 67 and rec["run_name"] == "quick"
    assert rec["smoke_test"].startswith("Every effort moves you")
    assert rec["tokenizer"]["vocab_size"] == 8192 and rec["dataset"]["splits"]["train"]["tokens"] > 500_000
    nb = json.loads((run_dir / "train.ipynb").read_text())
    text = json.dumps(nb)
    assert "Loss against our test dataset" in text and "Training complete in" in text
    assert {"loss.png", "lr.png", "grad_norm.png", "metrics.jsonl"} <= {p.name for p in run_dir.iterdir()}
    # the record's test loss is a deterministic function of the saved weights
    from gptnb.evaluate import evaluate_run
    assert evaluate_run(run_dir) == rec["test_loss"]


def test_plain_papermill_puts_the_record_beside_the_output_notebook(tmp_path):
    out = tmp_path / "beside.ipynb"
    res = papermill(out, *QUICK, "--inject-output-path")
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((tmp_path / "beside" / "record.json").read_text())["status"] == "complete"


def test_a_misspelled_parameter_stops_the_run_and_writes_no_record(tmp_path):
    "Issue 19: a bad parameter is named, and no record is written anywhere (no folder the user never meant)."
    res = papermill(tmp_path / "typo.ipynb", *QUICK, "-p", "init_sed", "67", "--inject-output-path")
    assert res.returncode != 0 and "init_sed" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["typo.ipynb"]


@pytest.mark.parametrize("param, value, message", [
    ("intervention", "qkv-bais", "qkv-bais"), ("init_seed", "-5", "-5"), ("preset", "huge", "huge"),
    ("train_seed", "1.5", "1.5")])
def test_bad_values_fail_before_training(tmp_path, param, value, message):
    res = papermill(tmp_path / "bad.ipynb", *QUICK, "-p", param, value, "--inject-output-path")
    assert res.returncode != 0 and message in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ipynb"]
