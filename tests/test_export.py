"Tests of gptnb.export: run records and metrics written as TensorBoard events, read back with TensorBoard's reader."
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gptnb.config import RunSpec
from gptnb.records import RunRecord, read_metrics, write_json_atomic

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from gptnb.export import write_tensorboard


def fake_run(runs, name, status="complete", intervention="baseline", init_seed=42, train_seed=None, steps=8,
             metrics=True, offset=0.0):
    "A run folder with a record.json and (optionally) a metrics.jsonl of `steps` train rows and a few eval rows."
    folder = runs / name
    folder.mkdir(parents=True)
    spec = RunSpec(run_name=name, run_dir=str(folder), intervention=intervention, init_seed=init_seed,
                   train_seed=train_seed)
    done = status == "complete"
    rec = RunRecord(spec, status=status, test_loss=3.5 + offset if done else None,
                    final_train_loss=3.4 + offset if done else None)
    write_json_atomic(folder / "record.json", rec.to_dict())
    if metrics:
        rows = [dict(step=s, tokens=64 * (s + 1), loss=5.0 - 0.1 * s + offset, lr=1e-3 * (s + 1) / steps,
                     grad_norm=1.0 + 0.01 * s) for s in range(steps)]
        rows += [dict(step=s, val_loss=4.9 - 0.1 * s + offset) for s in range(0, steps, 3)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "tiny-baseline-i1", init_seed=1)
    fake_run(runs, "tiny-qkv-bias-i2", intervention="qkv-bias", init_seed=2, train_seed=7, offset=0.25)
    return runs


def accumulate(folder):
    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0})   # 0: keep every event, no sampling
    ea.Reload()
    return ea


def hparams_of(ea):
    content = ea.PluginTagToContent("hparams")
    start = [HParamsPluginData.FromString(c).session_start_info for t, c in content.items() if "start" in t]
    assert len(start) == 1
    return {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start[0].hparams.items()}


def f32(xs): return [float(np.float32(x)) for x in xs]   # TensorBoard scalars are stored as float32


def test_scalars_read_back_equal_the_metrics(runs):
    folders = write_tensorboard(runs)
    assert folders == [runs / "tensorboard" / "tiny-baseline-i1", runs / "tensorboard" / "tiny-qkv-bias-i2"]
    for folder in folders:
        m, ea = read_metrics(runs / folder.name), accumulate(folder)
        assert {"train/loss", "train/lr", "train/grad_norm", "val/loss"} <= set(ea.Tags()["scalars"])
        for tag, step, key in [("train/loss", "step", "loss"), ("train/lr", "step", "lr"),
                               ("train/grad_norm", "step", "grad_norm"), ("val/loss", "val_step", "val_loss")]:
            events = ea.Scalars(tag)
            assert [e.step for e in events] == [int(s) for s in m[step]]
            assert [e.value for e in events] == f32(m[key])
        assert len(list(folder.glob("events.out.tfevents.*"))) == 1


def test_hparams_and_final_metrics(runs):
    base, qkv = write_tensorboard(runs)
    assert hparams_of(accumulate(base)) == dict(intervention="baseline", preset="tiny", init_seed=1.0,
                                                 train_seed="None", data_seed="None", status="complete")
    hp = hparams_of(accumulate(qkv))
    assert hp["intervention"] == "qkv-bias" and hp["init_seed"] == 2 and hp["train_seed"] == 7
    ea = accumulate(qkv)
    assert [(e.step, e.value) for e in ea.Scalars("test_loss")] == [(7, float(np.float32(3.75)))]
    assert [e.value for e in ea.Scalars("final_train_loss")] == f32([3.65])


def test_incomplete_run_gets_hparams_but_no_final_metrics(runs):
    fake_run(runs, "tiny-baseline-i3", status="failed", init_seed=3)
    folders = write_tensorboard(runs)
    ea = accumulate(folders[1])
    assert folders[1].name == "tiny-baseline-i3" and hparams_of(ea)["status"] == "failed"
    assert "test_loss" not in ea.Tags()["scalars"] and "final_train_loss" not in ea.Tags()["scalars"]
    assert len(ea.Scalars("train/loss")) == 8


def test_run_without_metrics_is_skipped_with_a_note(runs, capsys):
    fake_run(runs, "tiny-baseline-i4", init_seed=4, metrics=False)
    folders = write_tensorboard(runs)
    assert [f.name for f in folders] == ["tiny-baseline-i1", "tiny-qkv-bias-i2"]
    assert capsys.readouterr().out == "skipped tiny-baseline-i4: no metrics.jsonl (status complete)\n"   # no machine path
    assert not (runs / "tensorboard" / "tiny-baseline-i4").exists()


def test_rerunning_replaces_the_events_and_never_reads_its_own_output(runs, tmp_path):
    first = write_tensorboard(runs)
    (first[0] / "events.out.tfevents.stale").write_bytes(b"")   # anything an earlier export left is removed
    again = write_tensorboard(runs)
    assert again == first                                          # the tensorboard folder is not read as a run
    for folder in again:
        assert len(list(folder.iterdir())) == 1
        assert len(accumulate(folder).Scalars("train/loss")) == 8    # not 16
    out = write_tensorboard(runs, out_dir=tmp_path / "tb")
    assert [f.parent for f in out] == [tmp_path / "tb"] * 2


def test_refuses_to_write_over_the_runs(runs):
    for out in (runs, runs.parent):
        with pytest.raises(ValueError, match="run"): write_tensorboard(runs, out_dir=out)
    assert sorted(p.name for p in (runs / "tiny-baseline-i1").iterdir()) == ["metrics.jsonl", "record.json"]


def test_missing_tensorboard_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['tensorboard'] = None\n"
            "from gptnb.export import write_tensorboard\n"
            "try: write_tensorboard(sys.argv[1])\n"
            "except ImportError as e: print(e)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert 'pip install "gptnb[tensorboard]"' in out.stdout, out.stderr


@pytest.mark.parametrize("bad", ["../../victim", "..", ".", "a/b", "/abs/victim", 7])
def test_a_run_name_from_a_record_is_one_path_component_and_nothing_outside_is_deleted(runs, tmp_path, bad):
    victim = tmp_path / "victim"; victim.mkdir(); (victim / "precious").write_text("keep")
    folder = runs / "tiny-baseline-i1"
    rec = json.loads((folder / "record.json").read_text()); rec["run_name"] = bad
    (folder / "record.json").write_text(json.dumps(rec))
    out = tmp_path / "out" / "tb"
    with pytest.raises(ValueError, match="run_name"): write_tensorboard(runs, out_dir=out)
    assert (victim / "precious").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "runs", "victim"] or not (tmp_path / "out").exists()


def test_an_export_never_deletes_through_a_link_out_of_its_folder(runs, tmp_path):
    from gptnb.export import clear_export_folder
    victim = tmp_path / "victim"; victim.mkdir(); (victim / "precious").write_text("keep")
    out = tmp_path / "tb"; out.mkdir(); (out / "tiny-baseline-i1").symlink_to(victim)
    with pytest.raises(ValueError, match="outside"): write_tensorboard(runs, out_dir=out)
    with pytest.raises(ValueError, match="outside"): clear_export_folder(out / ".." / "victim", out)
    assert (victim / "precious").read_text() == "keep"
