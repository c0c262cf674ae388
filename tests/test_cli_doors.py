"""Doors that explain themselves (issue 19, defects 5 and 7): `gptnb run` and `gptnb sweep` check what they can
before any kernel or job starts, suggest the flag or parameter meant, take the same flags, and say what to install."""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gptnb
import gptnb.cli as cli
from gptnb.config import RunSpec

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture
def no_kernel(monkeypatch):
    "The runners of `gptnb run` and `gptnb sweep` replaced by recorders: any call means a kernel would have started."
    calls = []
    def fake_run_notebook(spec, notebook=None, log_output=True):
        calls.append((spec, log_output))
        return {"status": "complete", "test_loss": 3.0}
    monkeypatch.setattr(cli, "run_notebook", fake_run_notebook)
    monkeypatch.setattr(cli, "run_sweep", lambda sweep, **kw: calls.append((sweep, kw)) or [])
    return calls


def run_cli(capsys, *args):
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_missing_dataset_dir_fails_before_any_kernel_and_leaves_no_folder(tmp_path, monkeypatch, capsys, no_kernel):
    monkeypatch.chdir(tmp_path)
    for args in (["run", "x", "-p", "dataset_dir", "mydata"], ["run", "x", "-p", "dataset_dir", str(tmp_path / "gone")],
                 ["sweep", "s", "-p", "dataset_dir", "mydata", "--dry-run"]):
        code, _, err = run_cli(capsys, *args, "--runs-dir", "runs")
        assert code == cli.EXIT_BAD_INPUT and "dataset_dir" in err and "no folder" in err, err
    assert no_kernel == [] and list(tmp_path.iterdir()) == []
    code, _, err = run_cli(capsys, "run", "x", "-p", "dataset_dir", "data/tok", "--runs-dir", "runs")
    assert code == cli.EXIT_BAD_INPUT and "no folder" in err and "write hf:data/tok" in err, err   # never a download
    monkeypatch.setenv("GPTNB_DATA_DIR", str(tmp_path / "cache"))   # a marked Hub id not downloaded yet, no network:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")                        # the download fails here, not in a kernel
    code, _, err = run_cli(capsys, "run", "x", "-p", "dataset_dir", "hf:data/tok", "--runs-dir", "runs")
    assert code == cli.EXIT_BAD_INPUT and "downloading the Hugging Face dataset 'data/tok' failed" in err, err
    assert no_kernel == []
    assert not (tmp_path / "runs").exists()
    (tmp_path / "mydata").mkdir()   # the same name, now a folder here: taken, made absolute for the kernel
    assert run_cli(capsys, "run", "x", "-p", "dataset_dir", "mydata", "--runs-dir", "runs")[0] == cli.EXIT_COMPLETE
    assert no_kernel[0][0].dataset_dir == str(tmp_path / "mydata")


@pytest.mark.parametrize("overrides, field", [('{"lr": Infinity}', "lr"), ('{"lr": NaN}', "lr"),
                                              ('{"weight_decay": Infinity}', "weight_decay"),
                                              ('{"grad_clip": Infinity}', "grad_clip")])
def test_non_finite_numbers_are_refused_before_any_kernel(tmp_path, capsys, no_kernel, overrides, field):
    code, _, err = run_cli(capsys, "run", "x", "-p", "train_overrides", overrides, "--runs-dir", tmp_path)
    assert code == cli.EXIT_BAD_INPUT and f"TrainConfig.{field}=" in err and "finite" in err, err
    assert no_kernel == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, says", [
    (["run", "x", "--interventon", "qkv-bias"], "did you mean --intervention?"),
    (["sweep", "x", "--interventon", "qkv-bias"], "did you mean --interventions?"),
    (["sweep", "x", "--init-seed", "1"], "did you mean --init-seeds?"),
    (["run", "x", "--max-steps", "2"], "did you mean -p max_steps VALUE?"),
    (["sweep", "x", "--interv", "qkv-bias"], "did you mean --interventions?"),    # no abbreviations
    (["sweep", "x", "--dry"], "did you mean --dry-run?"),
    (["run", "x", "--runs-di", "r"], "did you mean --runs-dir?"),
])
def test_a_misspelled_flag_is_refused_with_the_flag_meant(tmp_path, capsys, no_kernel, args, says):
    with pytest.raises(SystemExit) as e: cli.main(args + ["--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and f"gptnb {args[0]}" in err, err   # the subcommand's usage
    assert no_kernel == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, says", [
    (["run", "x", "-p", "init_sed", "67"], "did you mean 'init_seed'?"),
    (["sweep", "x", "-p", "max_step", "2"], "did you mean 'max_steps'?"),
    (["sweep", "x", "-p", "preset", "tiny"], "--preset"),
    (["sweep", "x", "-p", "intervention", "qkv-bias"], "--interventions"),
    (["sweep", "x", "-p", "init_seed", "1"], "--init-seeds"),
])
def test_a_misspelled_or_misplaced_run_parameter_names_the_one_meant(tmp_path, capsys, no_kernel, args, says):
    code, _, err = run_cli(capsys, *args, "--runs-dir", tmp_path)
    assert code == cli.EXIT_BAD_INPUT and says in err, err
    assert no_kernel == [] and list(tmp_path.iterdir()) == []


def test_run_takes_the_preset_and_intervention_flags_of_sweep(tmp_path, capsys, no_kernel):
    code, out, _ = run_cli(capsys, "run", "x", "--preset", "tiny", "--intervention", "qkv-bias", "--runs-dir", tmp_path)
    assert code == cli.EXIT_COMPLETE and (no_kernel[0][0].preset, no_kernel[0][0].intervention) == ("tiny", "qkv-bias")
    code, _, err = run_cli(capsys, "run", "y", "--intervention", "qkv-bias", "-p", "intervention", "baseline",
                           "--runs-dir", tmp_path)
    assert code == cli.EXIT_BAD_INPUT and "intervention" in err and len(no_kernel) == 1, err
    plan = run_cli(capsys, "sweep", "s", "--intervention", "qkv-bias", "--dry-run", "--runs-dir", tmp_path)[1]
    assert "-p intervention qkv-bias" in plan   # sweep takes the singular spelling too


def _subparsers(parser):
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_every_option_of_every_command_has_help():
    parser = cli.cli_parser()
    missing = [f"{name} {a.option_strings or a.dest}" for name, sub in _subparsers(parser).items()
               for a in sub._actions if not isinstance(a, argparse._HelpAction) and not a.help]
    missing += [str(a.option_strings) for a in parser._actions
                if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert missing == []
    assert all(not sub.allow_abbrev for sub in _subparsers(parser).values()) and not parser.allow_abbrev


def test_version(capsys):
    with pytest.raises(SystemExit) as e: cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"gptnb {gptnb.__version__}"


def test_a_missing_notebook_runner_names_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "papermill", None)   # `import papermill` now fails as if it were not installed
    code, _, err = run_cli(capsys, "run", "x", "--runs-dir", tmp_path)
    assert code == cli.EXIT_BAD_INPUT and "papermill" in err and "pip install" in err, err
    assert list(tmp_path.iterdir()) == []


def test_run_shows_progress_by_default_and_quiet_silences_it(tmp_path, capsys, no_kernel):
    run_cli(capsys, "run", "x", "--runs-dir", tmp_path)
    run_cli(capsys, "run", "y", "--runs-dir", tmp_path, "--quiet")
    assert [log for _, log in no_kernel] == [True, False]


@pytest.mark.slow
def test_gptnb_run_streams_its_progress_without_the_kernels_tcp_warning(tmp_path):
    res = subprocess.run(["gptnb", "run", "p", "--runs-dir", tmp_path, "-p", "max_steps", "2"], capture_output=True,
                         text=True, env=ENV, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    text = res.stdout + res.stderr
    assert "running over TCP" not in text and "IPKernelApp" not in text, text[-3000:]
    # the notebook's progress (plain lines: the kernel writes to a pipe, not a terminal) and its lines, as it ran
    assert "p: 2/2 steps, loss" in text and "Training complete" in text, text[-3000:]


def test_the_command_line_does_not_load_the_statistics_until_a_command_needs_them():
    # scipy and pandas (gptnb.power, gptnb.report) cost every `gptnb` command about a second of start-up
    probe = "import sys, gptnb.cli; print(sorted(m for m in ('gptnb.power', 'gptnb.report', 'scipy', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
