"""`gptnb report` and `gptnb decide`: the verdict table of a sweep, and the same verdicts for losses from anywhere.

Sign convention throughout: Δ = arm − baseline in test loss (nats); negative Δ = the arm's loss is lower = helps."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as sps

import gptnb.cli as cli
from gptnb.report import format_table, render_report, report_table, sweep_runs

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "runs" / "noise-study-2"
# 3.28 is the modded-nanogpt speedrun's target validation loss; these are six runs' final losses around it
SPEEDRUN = [3.2791, 3.2768, 3.2802, 3.2774, 3.2783, 3.2779]


def _decide(capsys, *args) -> tuple:
    code = cli.main(["decide", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _write_csv(path: Path, rows) -> Path:
    path.write_text("arm,seed,loss\n" + "".join(f"{a},{s},{l}\n" for a, s, l in rows))
    return path


def test_decide_target_gives_scipy_one_sided_t_p(tmp_path, capsys):
    f = _write_csv(tmp_path / "speedrun.csv", [("mine", 1000 + i, x) for i, x in enumerate(SPEEDRUN)])
    code, out, _ = _decide(capsys, f, "--target", "3.28", "--json")
    assert code == cli.EXIT_COMPLETE
    row = json.loads(out)["arms"][0]
    expected = sps.ttest_1samp(SPEEDRUN, 3.28, alternative="less").pvalue
    assert row["arm"] == "mine" and row["n"] == 6
    assert row["p_t"] == pytest.approx(expected, rel=1e-12)
    assert row["sequential"] in ("helps", "undecided") and row["stop"]   # "stop: decided" or "run about N more"
    code, text, _ = _decide(capsys, f, "--target", "3.28")
    assert code == cli.EXIT_COMPLETE and "below 3.28" in text and "mine" in text


def test_decide_json_file_and_baseline_pairing(tmp_path, capsys):
    rows = [{"arm": a, "seed": s, "loss": 3.28 + (0.01 if a == "b" else 0) + 0.001 * s} for a in "ab" for s in range(5)]
    f = tmp_path / "losses.json"; f.write_text(json.dumps(rows))
    code, out, _ = _decide(capsys, f, "--baseline", "a", "--json")
    assert code == cli.EXIT_COMPLETE
    (arm,) = json.loads(out)["arms"]
    assert arm["arm"] == "b" and arm["n_pairs"] == 5 and arm["design"] == "paired"
    assert arm["mean_diff"] == pytest.approx(0.01) and arm["verdict"] == "hurts"   # + = the arm's loss is higher


def test_decide_refuses_a_repeated_seed(tmp_path, capsys):
    f = _write_csv(tmp_path / "dup.csv", [("mine", 1, 3.279), ("mine", 2, 3.281), ("mine", 1, 3.277)])
    code, _, err = _decide(capsys, f, "--target", "3.28")
    assert code == cli.EXIT_BAD_INPUT
    assert "seed '1' twice" in err and "same run repeated, not independent evidence" in err


@pytest.mark.parametrize("text,args,message", [
    ("arm,seed,val_loss\nmine,1,3.27\n", [], "missing ['loss']"),
    ("arm,seed,loss\nmine,1,3.27\nmine,2,abc\n", [], "row 2: loss 'abc' is not a number"),
    ("arm,seed,loss\na,1,3.27\na,2,3.28\nb,1,3.26\nb,2,3.29\n", ["--baseline", "base"],
     "baseline arm 'base' is not in"),
])
def test_decide_bad_input_names_the_bad_value(tmp_path, capsys, text, args, message):
    f = tmp_path / "bad.csv"; f.write_text(text)
    code, _, err = _decide(capsys, f, *args)
    assert code == cli.EXIT_BAD_INPUT and message in err, err
    if "baseline" in message: assert "['a', 'b']" in err       # the valid choices


def test_report_reproduces_the_readme_noise_study_verdicts():
    "README, noise study: the primary plan is paired t, Holm over ten arms, α 0.05, equivalence margin ±0.02 nats."
    table, notes = report_table(STUDY, "baseline", alpha=0.05, margin=0.02)
    v, d = dict(zip(table.arm, table.verdict)), dict(zip(table.arm, table.mean_diff))
    assert sorted(a for a, x in v.items() if x == "helps") == ["remove-dropout", "weight-decay-cerebras"]
    assert sorted(a for a, x in v.items() if x == "hurts") == sorted(
        ["weight-decay-gpt2", "cosine-schedule", "schedule-learning-rate", "stacked", "gpt2-init", "weight-tying"])
    assert v["qkv-bias"] == "not shown" and v["gradient-clipping"] == "equivalent" and d["gradient-clipping"] == 0
    readme = {"remove-dropout": (-0.0309, -0.0458, -0.0160), "weight-decay-cerebras": (-0.0171, -0.0246, -0.0096),
              "weight-decay-gpt2": (0.0114, 0.0063, 0.0165), "qkv-bias": (0.0231, -0.0004, 0.0467),
              "weight-tying": (0.7699, 0.7598, 0.7801), "cosine-schedule": (0.1999,), "schedule-learning-rate": (0.3390,),
              "stacked": (0.3424,), "gpt2-init": (0.3444,)}
    for arm, nums in readme.items():
        row = table[table.arm == arm].iloc[0]
        assert [round(x, 4) for x in (row.mean_diff, row.ci_low, row.ci_high)][:len(nums)] == list(nums), arm
    # sequential, on every arm's five pairs: weight tying, both schedules and stacked hurt; gradient clipping equivalent
    seq = dict(zip(table.arm, table.sequential))
    assert {a for a, s in seq.items() if s == "hurts"} == {"weight-tying", "cosine-schedule", "schedule-learning-rate",
                                                          "stacked"}
    assert seq["gradient-clipping"] == "equivalent" and seq["qkv-bias"] == "undecided"
    assert notes == []                                   # 55 complete runs, all paired, none missing
    text = format_table(table, notes)
    assert "NEGATIVE = the arm's loss is lower = helps" in text.splitlines()[0]
    assert "weight-tying: hurts after 5 pairs" in text and "run-minutes" in text


def _copy_study(dst: Path, arms=("baseline", "qkv-bias", "remove-dropout")) -> Path:
    "A small sweep folder: the records (and metrics) of a few noise-study arms, their sweep.json and sequential.json."
    dst.mkdir(parents=True)
    for run in STUDY.iterdir():
        if run.is_dir() and any(run.name == f"tiny-{a}-i{k}-t{k}-d{k}" for a in arms for k in range(1, 6)):
            (dst / run.name).mkdir()
            for f in ("record.json", "metrics.jsonl"):
                if (run / f).exists(): shutil.copy(run / f, dst / run.name / f)
    for f in ("sweep.json", "sequential.json"): shutil.copy(STUDY / f, dst / f)
    return dst


def test_report_names_failed_and_missing_runs(tmp_path, capsys):
    sweep = _copy_study(tmp_path / "s")
    rec = sweep / "tiny-qkv-bias-i3-t3-d3" / "record.json"
    r = json.loads(rec.read_text()); r.update(status="failed", error="RuntimeError: out of memory"); rec.write_text(json.dumps(r))
    runs = sweep_runs(sweep)
    assert [x["run_name"] for x in runs["failed"]] == ["tiny-qkv-bias-i3-t3-d3"]
    assert "tiny-weight-tying-i1-t1-d1" in runs["missing"]          # planned in sweep.json, no record here
    assert cli.main(["report", str(sweep), "--no-notebook"]) == cli.EXIT_COMPLETE
    out = capsys.readouterr().out
    assert "failed: tiny-qkv-bias-i3-t3-d3 (status 'failed': RuntimeError: out of memory)" in out
    assert "missing: tiny-weight-tying-i1-t1-d1 (planned in sweep.json, no record)" in out
    assert re.search(r"qkv-bias\s+4\s", out)                          # four pairs left, not silently five


def test_report_says_which_arms_are_unpaired_and_why(tmp_path):
    sweep = _copy_study(tmp_path / "s")
    for k in range(1, 6):                  # re-key remove-dropout's seeds: nothing shared with the baseline
        rec = sweep / f"tiny-remove-dropout-i{k}-t{k}-d{k}" / "record.json"
        r = json.loads(rec.read_text()); r["init_seed"] = 100 + k; rec.write_text(json.dumps(r))
    table, notes = report_table(sweep)
    row = table[table.arm == "remove-dropout"].iloc[0]
    assert row.design != "paired" and row.n_pairs == 0
    assert any(n.startswith("remove-dropout: compared unpaired (Welch) — only 0 of its 5 seed keys") for n in notes)


def test_report_bad_baseline_is_exit_2_with_choices(tmp_path, capsys):
    assert cli.main(["report", str(STUDY), "--baseline", "nope", "--no-notebook"]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "'nope'" in err and "'remove-dropout'" in err


def test_report_json_is_strict(capsys):
    assert cli.main(["report", str(STUDY), "--no-notebook", "--json", "--margin", "0.02"]) == cli.EXIT_COMPLETE
    doc = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert doc["convention"].startswith("Δ = arm − baseline") and len(doc["arms"]) == 10


@pytest.mark.slow
def test_render_report_writes_notebook_and_offline_html(tmp_path):
    sweep = _copy_study(tmp_path / "s")
    nb, html = render_report(sweep, margin=0.02)
    assert nb == sweep / "report.ipynb" and html == sweep / "report.html"
    text = html.read_text()
    # all three plots embedded (band, differences, learning curves); the notebook's front matter is no page text
    assert text.count("data:image/png;base64") >= 3 and "skip_exec" not in text
    assert not re.search(r'<script[^>]*src="(https?:)?//', text)     # nothing loaded from the network
    assert "NEGATIVE = the arm" in text and "remove-dropout" in text and str(ROOT) not in text


# The end-to-end flow (a user's file, a sweep until decided, its report) runs from the wheel alone in
# tests/test_packaging.py, where the issue asks for it.

@pytest.mark.slow
def test_offline_html_finds_nbconvert_templates_outside_its_own_environment(tmp_path):
    "A wheel installed into a bare venv, its dependencies in another environment: the HTML template is still found."
    import sysconfig
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_outer.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n{ROOT}\n")
    code = ("import nbformat; from gptnb.report import offline_html; nb = nbformat.v4.new_notebook(); "
            "nb.cells.append(nbformat.v4.new_markdown_cell('# hi')); print(len(offline_html(nb)))")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH")}
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0 and int(r.stdout.strip()) > 1000, r.stderr[-2000:]


def test_a_decision_logged_under_a_file_reference_reaches_its_arm(tmp_path):
    "sequential.json keys arms by the text the user typed (ideas.py:NAME); the table names them NAME: both must meet."
    sweep = _copy_study(tmp_path / "s", arms=("baseline", "qkv-bias", "weight-tying"))
    from gptnb.report import sequential_log   # the committed log is in the older `rounds` form: rewrite it as `arms`
    log = {"arms": {f"../my/ideas.py:{arm}": {"decision": hist[-1]["decision"], "history": hist}
                    for arm, hist in sequential_log(sweep).items()}}
    (sweep / "sequential.json").write_text(json.dumps(log))
    table, _ = report_table(sweep, margin=0.02)
    decided = dict(zip(table.arm, table.decided_after))
    assert decided["weight-tying"].startswith("hurts after 5 pairs") and decided["qkv-bias"] == "undecided after 5 pairs"
