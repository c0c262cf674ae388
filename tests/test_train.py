"Training: reproducibility, seeds, DDP equivalence, kill-and-resume, interventions at tiny, bad parameters."
import json
import math
import os
from pathlib import Path

import pytest
import torch

from gptnb.config import INTERVENTIONS, POST_INTERVENTIONS
from gptnb.model import GPTModel, init_weights
from gptnb.records import read_metrics
from gptnb.config import RunSpec
from gptnb.launch import launch, run_training
from gptnb.train import train
from helpers import small_run_kwargs, synthetic_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.mktemp("data"))


def run(tmp_path, data, name, **kw):
    kwargs = small_run_kwargs(data, **kw.pop("small", {}))
    return train(RunSpec(run_dir=str(tmp_path / name), **{**kwargs, **kw}))


def test_same_parameters_give_bit_identical_weights(tmp_path, data):
    a, b = run(tmp_path, data, "a", train_seed=5), run(tmp_path, data, "b", train_seed=5)
    assert a["final_weights_sha256"] == b["final_weights_sha256"]
    assert a["test_loss"] == b["test_loss"]


def test_train_seed_changes_only_the_training_randomness(tmp_path, data):
    a, b = run(tmp_path, data, "a", train_seed=1), run(tmp_path, data, "b", train_seed=2)
    assert a["initial_weights_sha256"] == b["initial_weights_sha256"]
    assert a["final_weights_sha256"] != b["final_weights_sha256"]


def test_init_seed_changes_the_initial_weights(tmp_path, data):
    a, b = run(tmp_path, data, "a", init_seed=1), run(tmp_path, data, "b", init_seed=2)
    assert a["initial_weights_sha256"] != b["initial_weights_sha256"]


def test_data_seed_changes_the_order_but_not_the_init(tmp_path, data):
    a, b = run(tmp_path, data, "a"), run(tmp_path, data, "b", data_seed=3)
    assert a["initial_weights_sha256"] == b["initial_weights_sha256"]
    assert a["final_weights_sha256"] != b["final_weights_sha256"]


def test_stable_init_shares_common_parameters_across_interventions(tmp_path):
    "baseline, qkv-bias and weight-tying under init_scheme='stable', built exactly as a run builds them."
    models = {}
    for name in ("baseline", "qkv-bias", "weight-tying"):
        m, t = RunSpec(run_dir=str(tmp_path), intervention=name, init_scheme="stable").configs()
        models[name] = dict(init_weights(GPTModel(m), 42, t.init_scheme, t.init_distribution).named_parameters())
    base = models["baseline"]
    for name in ("qkv-bias", "weight-tying"):
        common = set(base) & set(models[name])
        assert len(common) >= len(base) - 1
        for k in common:
            assert torch.equal(base[k], models[name][k]), (name, k)
    # and under the post's sequential scheme they do not: the confound the stable scheme removes
    m, t = RunSpec(run_dir=str(tmp_path), intervention="qkv-bias").configs()
    torch.manual_seed(42); seq_bias = dict(GPTModel(m).named_parameters())
    m0, _ = RunSpec(run_dir=str(tmp_path)).configs()
    torch.manual_seed(42); seq_base = dict(GPTModel(m0).named_parameters())
    assert not torch.equal(seq_base["out_head.weight"], seq_bias["out_head.weight"])


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process_accumulating(tmp_path, data):
    "2 gloo ranks × microbatch 4 == 1 process × 2 accumulation steps × microbatch 4 (dropout on)."
    kw = small_run_kwargs(data, max_steps=12)
    kw["model_overrides"]["drop_rate"] = 0.1
    single = train(RunSpec(run_dir=str(tmp_path / "single"), train_seed=7, **kw))
    double = launch(RunSpec(run_dir=str(tmp_path / "ddp"), train_seed=7, nproc=2, **kw))
    assert single["grad_accum"] == 2 and double["grad_accum"] == 1 and double["world_size"] == 2
    assert single["initial_weights_sha256"] == double["initial_weights_sha256"]
    l1 = read_metrics(tmp_path / "single")["loss"].tolist()
    l2 = read_metrics(tmp_path / "ddp")["loss"].tolist()
    assert len(l1) == len(l2) == 12
    assert max(abs(a - b) for a, b in zip(l1, l2)) < 1e-5
    from gptnb.model import load_model
    w1 = load_model(tmp_path / "single" / "model.safetensors").state_dict()
    w2 = load_model(tmp_path / "ddp" / "model.safetensors").state_dict()
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("intervention", POST_INTERVENTIONS + (
    "stacked", pytest.param("gpt2-init", marks=pytest.mark.slow), "cosine-schedule", "weight-tying+gpt2-init"))
def test_every_intervention_runs_at_tiny(tmp_path, intervention):
    rec = run_training(RunSpec(run_dir=str(tmp_path / intervention), intervention=intervention, max_steps=2,
                                 train_overrides={"test_sequences": 8}))
    assert rec["status"] == "complete", rec["error"]
    assert math.isfinite(rec["test_loss"])
    assert rec["interventions"] == intervention.split("+")


@pytest.mark.parametrize("bad, message", [
    (dict(preset="huge"), "huge"),
    (dict(intervention="qkv-bais"), "qkv-bais"),
    (dict(init_seed=-1), "-1"),
    (dict(train_seed=2.5), "2.5"),
    (dict(data_seed="7"), "'7'"),
    (dict(train_tokens=1000), "below one global batch"),
    (dict(nproc=(os.cpu_count() or 1) + 1), "nproc="),
])
def test_bad_parameters_fail_before_training_with_a_failed_record(tmp_path, bad, message):
    out = tmp_path / "bad"
    with pytest.raises(ValueError, match=None) as e:
        run_training(RunSpec(run_dir=str(out), **bad))
    assert message in str(e.value)
    rec = json.loads((out / "record.json").read_text())
    assert rec["status"] == "failed" and message in rec["error"]
    assert not (out / "metrics.jsonl").exists()  # nothing was trained


def test_a_preset_whose_corpus_is_not_bundled_asks_for_a_dataset(tmp_path):
    with pytest.raises(ValueError, match="dataset_dir"):
        train(RunSpec(run_dir=str(tmp_path / "g"), preset="gpt2-small", device="cpu", max_steps=1))


@pytest.mark.slow
def test_tiny_learns_language_not_just_word_frequencies(tmp_path):
    "The full tiny preset ends at least 0.5 nats below the unigram entropy of its training tokens."
    from gptnb.datasets import load_tokens
    from gptnb.evaluate import unigram_entropy
    rec = run_training(RunSpec(run_dir=str(tmp_path / "tiny")))
    entropy = unigram_entropy(load_tokens(Path(rec["dataset"]["path"]) / "train.safetensors"), 8192)
    assert rec["status"] == "complete"
    assert rec["test_loss"] <= entropy - 0.5, (rec["test_loss"], entropy)
    assert rec["initial_val_loss"] > entropy  # it started knowing nothing


def test_fp16_with_a_gradient_scaler_runs_on_cpu(tmp_path, data):
    "The post's AMP path (fp16 autocast + GradScaler), exercised where CI can run it."
    res = run(tmp_path, data, "fp16", small={"precision": "fp16"})
    first_row = json.loads((tmp_path / "fp16" / "metrics.jsonl").read_text().splitlines()[0])
    assert "loss_scale" in first_row and math.isfinite(res["test_loss"])


def test_a_blown_up_run_is_recorded_as_diverged(tmp_path, data):
    kw = small_run_kwargs(data, max_steps=60, lr=1e6)
    rec = run_training(RunSpec(run_dir=str(tmp_path / "boom"), **kw))
    assert rec["status"] == "diverged" and "non-finite" in rec["error"]
    assert json.loads((tmp_path / "boom" / "record.json").read_text())["status"] == "diverged"


def test_a_checkpoint_of_another_run_is_not_resumed(tmp_path, data):
    kw = small_run_kwargs(data, max_steps=10, checkpoint_every=5)
    first = train(RunSpec(run_dir=str(tmp_path / "r"), **kw))
    again = train(RunSpec(run_dir=str(tmp_path / "r"), **kw))  # resumes from step 5 and ends where the first did
    assert again["final_weights_sha256"] == first["final_weights_sha256"]
    changed = small_run_kwargs(data, max_steps=10, checkpoint_every=5, lr=0.02)
    with pytest.raises(RuntimeError, match="config_sha256"):
        train(RunSpec(run_dir=str(tmp_path / "r"), **changed))
    with pytest.raises(RuntimeError, match="loop_seed"):
        train(RunSpec(run_dir=str(tmp_path / "r"), train_seed=99, **kw))


def test_the_training_command_takes_no_abbreviated_flags(capsys):
    "Issue 19: `--max-step` is a typo, not an abbreviation of `--max-steps`: refused before any work."
    from gptnb.launch import main
    with pytest.raises(SystemExit) as e: main(["--max-step", "2"])
    assert e.value.code == 2 and "--max-step" in capsys.readouterr().err


def test_a_run_scores_its_test_slice_once_and_its_initial_weights_on_the_validation_windows(tmp_path, data, monkeypatch):
    "The loss at initialisation reads the validation windows the run validates on, not a second pass over the test slice."
    import gptnb.train as train_module
    scored = []
    def recording_score(model, tokens, protocol, device=None, per_sequence=True):
        result = original(model, tokens, protocol, device, per_sequence)
        scored.append((protocol.start_token, protocol.sequences, result.loss)); return result
    original = train_module.score
    monkeypatch.setattr(train_module, "score", recording_score)
    res = run(tmp_path, data, "once", max_steps=2)
    test_slice = [s for s in scored if s[:2] == (0, 16)]
    assert len(test_slice) == 1 and round(test_slice[0][2], 6) == res["test_loss"], scored
    assert scored[0][1] == 4 and scored[0][0] > 0 and res["initial_val_loss"] == scored[0][2], scored
    assert "initial_test_loss" not in res


def test_a_checkpoint_that_carries_the_old_initial_test_loss_still_resumes(tmp_path, data):
    "Record schema 2's checkpoints hold `initial_test_loss` in their progress: resumed to the same end, not a TypeError."
    from gptnb.checkpoints import load_checkpoint, save_checkpoint
    kw = small_run_kwargs(data, max_steps=10, checkpoint_every=5)
    first = train(RunSpec(run_dir=str(tmp_path / "r"), **kw))
    ckpt = load_checkpoint(tmp_path / "r")
    progress = dict(ckpt.state["progress"])
    progress["initial_test_loss"] = progress.pop("initial_val_loss")
    save_checkpoint(tmp_path / "r", ckpt.step, ckpt.model_state, {**ckpt.state, "progress": progress})
    again = train(RunSpec(run_dir=str(tmp_path / "r"), **kw))
    assert again["resumed_from"] == [5] and again["final_weights_sha256"] == first["final_weights_sha256"]
    assert again["initial_val_loss"] is None and first["initial_val_loss"] > first["test_loss"]


def test_every_door_records_the_unigram_entropy_its_charts_draw(tmp_path, data):
    "run_training (the CLI's, torchrun's and the notebook's door) measures the no-context floor before the charts."
    from gptnb.datasets import load_tokens
    from gptnb.evaluate import unigram_entropy
    rec = run_training(RunSpec(run_dir=str(tmp_path / "e"), **small_run_kwargs(data, max_steps=2)))
    assert rec["unigram_entropy"] == unigram_entropy(load_tokens(data / "train.safetensors"), 64)
    assert rec["charts"] == ["loss.png", "lr.png", "grad_norm.png"]
