"""The run is defined once, and the package reads top-down: short functions, imports only downward."""
import ast
import json
import re
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from gptnb.config import RunSpec
from gptnb.records import RunRecord

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gptnb"
# the order data flows through the series: a module may import only modules before it
LAYERS = ["checks", "seeding", "tokenizer", "datasets", "loader", "model", "interventions", "config", "evaluate", "records", "checkpoints", "train",
          "launch", "sweep", "stats", "variance", "power", "post", "export", "report", "cli"]


def _default(f):
    return f.default_factory() if f.default_factory is not MISSING else f.default


def test_the_notebook_parameters_cell_declares_exactly_the_run_fields():
    nb = json.loads((ROOT / "nbs" / "train.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    declared = {}
    for node in ast.parse("".join(cell["source"])).body:
        declared[node.targets[0].id] = ast.literal_eval(node.value)
    assert declared == {f.name: _default(f) for f in fields(RunSpec)}


def test_the_command_line_flags_are_exactly_the_run_fields():
    out = subprocess.run([sys.executable, "-m", "gptnb.train", "--help"], capture_output=True, text=True).stdout
    flags = set(re.findall(r"^\s+(--[a-z-]+)", out, re.MULTILINE))   # the option lines of --help
    assert flags == {"--" + f.name.replace("_", "-") for f in fields(RunSpec)}


def test_the_record_carries_every_run_field():
    rec = RunRecord(RunSpec(intervention="qkv-bias")).to_dict()
    assert all(rec[f.name] == getattr(RunSpec(intervention="qkv-bias"), f.name) for f in fields(RunSpec))


def _modules():
    return {p.stem: ast.parse(p.read_text()) for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}


def test_no_function_is_longer_than_60_lines():
    long = [f"{name}.{n.name}: {n.end_lineno - n.lineno + 1} lines" for name, tree in _modules().items()
            for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > 60]
    assert long == []


def test_the_argument_checks_are_defined_once_in_checks():
    "A count, positive, finite, unit-interval or choice check is gptnb.checks's; a copy elsewhere is a second definition."
    names = {"check_count", "check_positive", "check_finite", "check_unit", "check_choice", "check_n",
             "check_positive_int", "_check_int", "_check_positive", "_check_fraction", "_check_margin", "_check_target"}
    copies = [f"{module}.{n.name}" for module, tree in _modules().items() if module != "checks"
              for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in names]
    assert copies == []


def test_modules_import_only_downward_and_no_private_names():
    problems = []
    for name, tree in _modules().items():
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and n.module and (n.level == 1 or n.module.startswith("gptnb.")):
                other = n.module.split(".")[-1]   # nbdev exports `from gptnb.x` as `from .x`
                if LAYERS.index(other) >= LAYERS.index(name): problems.append(f"{name} imports {other}")
                problems += [f"{name} imports {other}.{a.name}" for a in n.names if a.name.startswith("_")]
    assert set(_modules()) == set(LAYERS) and problems == []
    assert sum(isinstance(n, ast.ImportFrom) and n.level == 1 for n in ast.walk(_modules()["train"])) >= 5  # it looked
