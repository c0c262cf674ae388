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
    log = _strict_json(tmp_path / "seq" / "sequential.json")
    arms = log["arms"]
    assert arms["qkv-bias"]["decision"] == "hurts" and arms["remove-dropout"]["decision"] == "helps"
    pairs = max(len(a["history"]) for a in arms.values())
    assert pairs < 15                                   # decided before the pairs ran out
    runs = sorted(p.name for p in (tmp_path / "seq").iterdir() if (p / "record.json").exists())
    assert len(runs) == 3 * pairs                       # nothing ran after the last decision
    out = capsys.readouterr().out
    assert "hurts" in out and "alpha 0.05 cannot decide before pair 5" in out


def _strict_json(path):
    "Parse as strict JSON: Infinity, -Infinity and NaN are not JSON and fail here."
    def refuse(c): raise ValueError(f"{path} holds {c}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_sequential_json_keeps_earlier_arms_and_is_strict_json(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "run_sweep", _fake_run_sweep)
    common = ["--init-seeds", ",".join(map(str, range(1, 21))), "--until-decided", "--max-seeds", "15",
              "--workers", "2", "--runs-dir", str(tmp_path)]
    assert cli.main(["sweep", "seq", "--interventions", "baseline,qkv-bias"] + common) == cli.EXIT_COMPLETE
    assert cli.main(["sweep", "seq", "--interventions", "baseline,remove-dropout"] + common) == cli.EXIT_COMPLETE
    arms = _strict_json(tmp_path / "seq" / "sequential.json")["arms"]
    assert arms["qkv-bias"]["decision"] == "hurts"      # the first invocation's arm survives the second
    assert arms["remove-dropout"]["decision"] == "helps"
    first = arms["qkv-bias"]["history"][0]
    assert first["pair"] == 1 and first["seeds"] == [1, None, None] and first["cs"] == [None, None]


def test_undecided_at_the_end_estimates_pairs_and_prints_the_command_to_go_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "run_sweep", _fake_run_sweep)
    code = cli.main(["sweep", "seq", "--interventions", "baseline,qkv-bias", "--init-seeds", "1,2,3,4,5,6",
                     "--until-decided", "--max-seeds", "3", "--workers", "2", "--runs-dir", str(tmp_path)])
    assert code == cli.EXIT_COMPLETE
    out = capsys.readouterr().out
    assert "--max-seeds 3 stops before it, so every arm will end undecided" in out
    assert "qkv-bias: undecided after 3 pairs; about 5 pairs in all would likely decide it" in out
    hint = next(l for l in out.splitlines() if l.startswith("to go on: "))
    assert "--interventions baseline,qkv-bias --init-seeds 1,2,3,4,5,6 " in hint and "--max-seeds 5" in hint


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


def test_a_failed_write_of_the_sequential_log_keeps_the_earlier_arms(tmp_path, monkeypatch):
    "The log holds every arm's history: a write cut short (a kill, a full disk) must leave the previous file whole."
    from pathlib import Path
    folder = tmp_path / "seq"
    cli.write_sequential(folder, 0.05, None, {"qkv-bias": [{"pair": 1, "decision": "undecided"}]})
    before = (folder / "sequential.json").read_text()

    def cut_short(self, data, *args, **kwargs):
        with open(self, "wb" if isinstance(data, bytes) else "w") as f: f.write(data[: len(data) // 2])
        raise OSError("No space left on device")
    monkeypatch.setattr(Path, "write_text", cut_short)
    monkeypatch.setattr(Path, "write_bytes", cut_short)
    try: cli.write_sequential(folder, 0.05, None, {"remove-dropout": [{"pair": 1, "decision": "helps"}]})
    except OSError: pass
    assert (folder / "sequential.json").read_text() == before
