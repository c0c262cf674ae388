"""gptnb installs without a checkout: the package ships the experiment notebook, and needs none of the authoring tools."""
import ast
import json
import re
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gptnb"
# what only the notebooks' authors need: the `dev` extra, never the installed package
AUTHOR_TOOLS = {"nbdev", "jupytext", "jupyterlab", "fastcore", "execnb"}


def _imported_roots(tree: ast.AST) -> set:
    "Top-level names of every absolute import in `tree`, at any depth (functions included)."
    roots = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import): roots |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module: roots.add(n.module.split(".")[0])
    return roots


def test_the_walker_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    import nbdev.export\n    from fastcore.basics import store_attr\n"
                     "from .datasets import x\nimport os")
    assert _imported_roots(tree) == {"nbdev", "fastcore", "os"}


def test_no_module_imports_an_authoring_tool():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert modules, f"no modules under {PACKAGE}"
    found = {f"{p.relative_to(ROOT)} imports {name}" for p in modules
             for name in _imported_roots(ast.parse(p.read_text(), filename=str(p))) & AUTHOR_TOOLS}
    assert found == set()


def test_the_shipped_notebook_is_the_source_notebook():
    shipped = PACKAGE / "notebooks" / "train.ipynb"
    assert shipped.is_file(), "gptnb/notebooks/train.ipynb is missing: run `python tools/ship_notebooks.py`"
    assert shipped.read_bytes() == (ROOT / "nbs" / "train.ipynb").read_bytes(), \
        "gptnb/notebooks/train.ipynb differs from nbs/train.ipynb: run `python tools/ship_notebooks.py`"


def _copy_source(dest: Path) -> Path:
    "The checkout without its build outputs, runs and environments: the wheel is built from what git would hold."
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".ipynb_checkpoints", ".pytest_cache"))
    return dest


def _run(cmd, **kw):
    res = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd} exited {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.mark.slow
def test_the_wheel_runs_the_notebook_outside_a_checkout(tmp_path):
    # 1. the wheel, built offline with this environment's setuptools, holds the notebook
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", wheels,
          _copy_source(tmp_path / "src")])
    wheel, = wheels.glob("gptnb-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "gptnb/notebooks/train.ipynb" in names
    assert zipfile.ZipFile(wheel).read("gptnb/notebooks/train.ipynb") == (ROOT / "nbs" / "train.ipynb").read_bytes()

    # 2. a fresh environment with only the wheel installed, then this environment's dependencies made visible:
    # a path line in a .pth file does not run the .pth files of that folder, so the editable finder of this
    # checkout stays off. The .pth comes after the install, so pip never sees (or uninstalls) the editable gptnb.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    py = venv / "bin" / "python"
    _run([py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel])
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    outer = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "zz_outer_env.pth").write_text("".join(f"{d}\n" for d in outer))

    # 3. an empty working directory with no checkout in it or above it
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    assert not any((d / "nbs").exists() for d in (cwd, *cwd.parents))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    where = _run([py, "-c", "import gptnb, gptnb.sweep; print(gptnb.__file__)"], cwd=cwd, env=env).stdout.strip()
    assert Path(where).resolve().is_relative_to(site.resolve()), f"gptnb imported from {where}, not the wheel"

    # the README's first command, from the wheel alone: a run folder with a complete record, the executed notebook,
    # its plots, and a test loss that the saved weights reproduce (tests/test_run_safety.py's `finished` fixture
    # makes the same run inside the checkout)
    gptnb = lambda *a: subprocess.run([str(venv / "bin" / "gptnb"), *a], cwd=cwd, env=env, capture_output=True,
                                      text=True, timeout=1800)
    res = gptnb("run", "quick", "-p", "max_steps", "2", "-p", "init_seed", "67")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    run_dir = cwd / "runs" / "quick"
    rec = json.loads((run_dir / "record.json").read_text())
    assert rec["status"] == "complete" and rec["init_seed"] == 67 and rec["run_name"] == "quick"
    assert rec["smoke_test"].startswith("Every effort moves you")
    assert rec["tokenizer"]["vocab_size"] == 8192 and rec["dataset"]["splits"]["train"]["tokens"] > 500_000
    executed = (run_dir / "train.ipynb").read_text()
    assert "Loss against our test dataset" in executed and "Training complete in" in executed
    assert f"{PACKAGE}{os.sep}" not in executed, "the notebook's kernel ran the checkout's gptnb, not the wheel's"
    assert {"loss.png", "lr.png", "grad_norm.png", "metrics.jsonl"} <= {p.name for p in run_dir.iterdir()}
    from gptnb.evaluate import score_run
    assert round(score_run(run_dir).loss, 6) == rec["test_loss"]   # the record's test loss is a function of the saved weights
    assert not (cwd / "nbs").exists()

    # 4. the user's own idea, in a file of theirs, through a sweep and its report, from the wheel alone. A plain 2×2
    # grid: `--until-decided`'s loop is tested with fake records (tests/test_sequential_sweep.py, 17_cli), so real
    # runs here only need to show that a user's file travels through the wheel's sweep and report.
    (cwd / "ideas.py").write_text((ROOT / "examples" / "ideas.py").read_text())
    s = gptnb("sweep", "mine", "--interventions", "baseline,ideas.py:rmsnorm", "--init-seeds", "1,2", "--workers", "2",
              "-p", "max_steps", "2")
    assert s.returncode == 0, s.stdout[-3000:] + s.stderr[-3000:]
    sweep = cwd / "runs" / "mine"
    records = [json.loads(f.read_text()) for f in sweep.glob("*/record.json")]
    assert len(records) == 4 and all(r["status"] == "complete" for r in records)
    user = [r for r in records if r["intervention"] != "baseline"]
    assert len(user) == 2 and all(not os.path.isabs(src["file"]) and src["file"].endswith("ideas.py")
                                  and len(src["sha256"]) == 64 for r in user for src in r["intervention_sources"])
    r = gptnb("report", "runs/mine")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (sweep / "report.ipynb").is_file() and (sweep / "report.html").is_file()
    assert "NEGATIVE = the arm's loss is lower = helps" in r.stdout
    assert re.search(r"^\s*rmsnorm\s+2\s", r.stdout, re.M), r.stdout   # the user's arm, paired on both seeds
