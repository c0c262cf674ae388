"""`gptnb sweep --until-decided`: the command's wiring, with training replaced by records of known test losses."""
import json

import numpy as np

import gptnb.cli as cli
from gptnb.records import RunRecord, finish_record

EFFECTS = {"baseline": 0.0, "qkv-bias": 0.03, "remove-dropout": -0.03}


def _fake_run_sweep(cell, **kwargs):
    "What run_sweep leaves behind, without training: a complete record per run, loss = 6.5 + effect + noise."
    assert kwargs["executor"] == "local" and kwargs["workers"] == 2
    for spec in cell.runs():
        noise = np.random.default_rng([spec.init_seed, list(EFFECTS).index(spec.intervention)]).normal(0, 0.004)
        spec.folder().mkdir(parents=True, exist_ok=True)
        finish_record(spec.folder(), RunRecord(spec, status="complete", test_loss=6.5 + EFFECTS[spec.intervention] + noise))
    return []


def test_until_decided_stops_each_intervention_at_its_decision(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "run_sweep", _fake_run_sweep)
    code = cli.main(["sweep", "seq", "--interventions", "baseline,qkv-bias,remove-dropout", "--init-seeds",
                     ",".join(map(str, range(1, 21))), "--until-decided", "--max-seeds", "15", "--workers", "2",
                     "--runs-dir", str(tmp_path)])
    assert code == cli.EXIT_COMPLETE
    log = json.loads((tmp_path / "seq" / "sequential.json").read_text())
    final = log["rounds"][-1]["decisions"]
    assert final["qkv-bias"]["decision"] == "hurts" and final["remove-dropout"]["decision"] == "helps"
    assert len(log["rounds"]) < 15                      # decided before the pairs ran out
    runs = sorted(p.name for p in (tmp_path / "seq").iterdir() if (p / "record.json").exists())
    assert len(runs) == 3 * len(log["rounds"])          # nothing ran after the last decision
    assert "hurts" in capsys.readouterr().out


def test_until_decided_refuses_bad_input_before_any_run(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(cli, "run_sweep", lambda cell, **kw: ran.append(cell))
    base = ["sweep", "seq", "--interventions", "baseline,qkv-bias", "--init-seeds", "1,2,3", "--until-decided",
            "--runs-dir", str(tmp_path)]
    assert cli.main(base + ["--max-seeds", "4"]) == cli.EXIT_BAD_INPUT
    assert cli.main(base + ["--margin", "-0.1"]) == cli.EXIT_BAD_INPUT
    assert cli.main(base + ["--alpha", "1.5"]) == cli.EXIT_BAD_INPUT
    assert cli.main(["sweep", "seq", "--until-decided", "--runs-dir", str(tmp_path)]) == cli.EXIT_BAD_INPUT
    assert ran == [] and list(tmp_path.iterdir()) == []
