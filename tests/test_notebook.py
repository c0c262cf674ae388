"""The experiment notebook under plain papermill: records beside the output, bad parameters. (`gptnb run` is tested
from the wheel in test_packaging.py and inside the checkout by test_run_safety.py's `finished` fixture.)"""
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


def test_a_bad_value_fails_before_training_and_writes_no_record(tmp_path):
    """The papermill door: a bad value ends the run before training, named, with no record written anywhere. Which
    values are bad, and the words that name them, are RunSpec.validate's, checked field by field in 06_config."""
    res = papermill(tmp_path / "bad.ipynb", *QUICK, "-p", "intervention", "qkv-bais", "--inject-output-path")
    assert res.returncode != 0 and "qkv-bais" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ipynb"]
