"""compat="post" (the training mode): the post's schedule, arithmetic, randomness and bookkeeping, checked against
torch's schedulers, the post's own code (when ../shared/reference/post-code is present) and an independent
re-implementation of its training loop (post_reference_loop.py), bit for bit."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gptnb.checkpoints import read_checkpoint
from gptnb.config import INTERVENTIONS, RunSpec, TrainConfig, get_preset, resolve
from gptnb.datasets import load_tokens
from gptnb.evaluate import PROTOCOLS, score
from gptnb.loader import TokenBatches
from gptnb.model import GPTConfig, GPTModel, load_state
from helpers import synthetic_dataset
from post_reference_loop import POST_CODE, microbatches
from seed_reference import RefGPT

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def needs_post_code():
    if not (POST_CODE / "gpt.py").is_file(): pytest.skip(f"the post's code is not at {POST_CODE}")


def post_schedule(total: int, percent: int, lr: float) -> list[float]:
    "Every step's LR from torch's schedulers, assembled as the post's ddp_train.py assembles them."
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    warm = (total * percent) // 100
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.00001, end_factor=1.0, total_iters=warm),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warm, eta_min=lr / 10)], milestones=[warm])
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
    return out


@pytest.mark.parametrize("total,percent,lr", [(1, 5, 0.0004), (19, 5, 0.0014), (20, 5, 0.0014), (30, 20, 0.01),
                                              (245, 5, 0.0175), (1000, 5, 0.0014), (33_165, 5, 0.0014)])
def test_every_step_of_the_schedule_is_torchs_sequential_lr(total, percent, lr):
    ours = TrainConfig(schedule="warmup-cosine", warmup_percent=percent, lr=lr).lr_schedule(total)
    theirs = post_schedule(total, percent, lr)
    assert len(ours) == total
    assert ours == theirs   # bitwise: the same objects, stepped the same way
    if total >= 1000:       # and the chained cosine really is the cosine, to float accuracy
        warm = total * percent // 100
        for s in range(warm, total):
            exact = lr / 10 + (lr - lr / 10) * (1 + math.cos(math.pi * (s - warm) / (total - warm))) / 2
            assert math.isclose(ours[s], exact, rel_tol=1e-9), s


def test_presets_and_their_modes():
    small, tiny = get_preset("gpt2-small").train, get_preset("tiny").train
    assert (small.compat, small.checkpoint_every, small.test_protocol) == ("post", 617, "post")
    assert (tiny.compat, tiny.checkpoint_every, tiny.test_protocol) == ("gptnb", 50, "gptnb")
    with pytest.raises(ValueError, match="test_protocol='x'.*valid choices"): TrainConfig(test_protocol="x")
    with pytest.raises(ValueError, match="compat='x'.*valid choices"): TrainConfig(compat="x")
    with pytest.raises(ValueError, match="compat='post'"):
        RunSpec(train_overrides={"compat": "post", "precision": "auto"}).validate()


def _post_gpt():
    needs_post_code()
    sys.path.insert(0, str(POST_CODE))
    from gpt import GPTModel as PostGPT
    return PostGPT


@pytest.mark.parametrize("qkv_bias", [False, True])
@pytest.mark.parametrize("reference", ["post-code", "seed_reference"])
def test_post_arithmetic_is_the_posts_bit_for_bit(reference, qkv_bias):
    "Same seed: same init, same dropout masks, same logits and gradients in training mode, to the last bit."
    c = dict(vocab_size=97, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.1, qkv_bias=qkv_bias)
    cls = _post_gpt() if reference == "post-code" else RefGPT
    torch.manual_seed(42); theirs = cls(c)
    torch.manual_seed(42); ours = GPTModel(GPTConfig(**c), compat="post")
    idx = torch.randint(0, 97, (4, 16), generator=torch.Generator().manual_seed(1))
    out = []
    for m in (theirs, ours):
        torch.manual_seed(7)
        logits = m.train()(idx)
        logits.square().mean().backward()
        out.append((logits, {k: p.grad for k, p in m.named_parameters()}))
    assert torch.equal(out[0][0], out[1][0])
    assert out[0][1].keys() == out[1][1].keys()
    for k in out[0][1]: assert torch.equal(out[0][1][k], out[1][1][k]), k


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_the_loader_feeds_each_rank_the_posts_sequences(tmp_path, world_size):
    data = synthetic_dataset(tmp_path, n_train=20_000, n_val=100)
    mb, ctx, steps = 3, 16, 10
    tc = {"microbatch_size": mb, "min_train_tokens": steps * world_size * mb * ctx, "start_train_token": 0}
    xs, ys = microbatches(data, tc, world_size, ctx)
    for rank in range(world_size):
        ours = TokenBatches(data / "train.safetensors", batch_size=mb, context_length=ctx, world_size=world_size, rank=rank)
        for step in range(steps):
            x, y = ours.get(step)
            assert torch.equal(x.long(), xs[step * world_size + rank].long()), (rank, step)
            assert torch.equal(y.long(), ys[step * world_size + rank].long()), (rank, step)


# The post's runs behind each named intervention, and the defaults its ddp_train.py applies to a missing key.
POST_RUNS = {
    "baseline": "runs/8xa100m40-baseline", "weight-tying": "runs/8xa100m40-weight-tying",
    "weight-decay-cerebras": "runs/8xa100m40-weight-decay-cerebras", "no-amp": "runs/8xa100m80-no-amp",
    "gradient-clipping": "runs/8xa100m40-gradient-clipping", "qkv-bias": "runs/8xa100m40-qkv-bias",
    "weight-decay-gpt2": "runs/8xa100m40-weight-decay-gpt2", "remove-dropout": "runs/8xa100m40-remove-dropout",
    "schedule-learning-rate": "runs/8xa100m40-schedule-learning-rate",
    "update-learning-rate": "runs/8xa100m40-update-learning-rate",
    "weight-decay-cerebras-scheduling-learning-rate": "runs/8xa100m40-weight-decay-cerebras-scheduling-learning-rate",
    "weight-decay-cerebras-scheduling-and-increasing-learning-rate":
        "runs/8xa100m40-weight-decay-cerebras-scheduling-and-increasing-learning-rate",
    "stacked": "runs-later/8xa100m40-stacked-interventions-1",
    "stacked-interventions-2": "runs-later/8xa100m40-stacked-interventions-2",
    "stacked-interventions-3": "runs-later/8xa100m40-stacked-interventions-3",
}
POST_DEFAULTS = {"learning_rate": 0.0004, "weight_decay": 0.1, "schedule_learning_rate": False, "use_amp": True,
                 "clipping_max_norm": None, "start_train_token": 0}


def test_every_named_post_run_is_an_intervention():
    assert set(POST_RUNS) <= set(INTERVENTIONS)


@pytest.mark.parametrize("name", sorted(POST_RUNS))
def test_named_intervention_matches_the_posts_run_config(name):
    needs_post_code()
    folder = POST_CODE / POST_RUNS[name]
    tc = {**POST_DEFAULTS, **json.loads((folder / "train.json").read_text())}
    mc = json.loads((folder / "model.json").read_text())
    m, t = resolve("gpt2-small", name)
    assert t.compat == "post" and tc["start_train_token"] == 0
    assert t.lr == tc["learning_rate"] and t.weight_decay == tc["weight_decay"]
    assert (t.betas, t.eps) == ((0.9, 0.999), 1e-8)                        # AdamW's defaults, which the post kept
    assert (t.schedule == "warmup-cosine") == tc["schedule_learning_rate"]
    if tc["schedule_learning_rate"]:
        assert (t.warmup_percent, t.warmup_start_factor, t.min_lr_divisor) == (tc["warmup_period_percent"], 1e-5, 10)
    assert t.grad_clip == tc["clipping_max_norm"]
    assert t.precision == ("fp16" if tc["use_amp"] else "fp32")
    assert t.micro_batch_size == tc["microbatch_size"] and t.batch_size == 8 * tc["microbatch_size"]  # 8 GPUs
    assert t.checkpoint_every == tc["checkpoint_interval"] and t.train_tokens == tc["min_train_tokens"]
    assert {k: getattr(m, k) for k in mc} == mc
    assert m.tie_weights == mc.get("tie_weights", False)


# --- whole runs under torchrun -------------------------------------------------------------------------------

MODEL = dict(vocab_size=64, context_length=32, emb_dim=32, n_heads=2, n_layers=2, drop_rate=0.1, qkv_bias=False)
STEPS, MB, EVERY, LR, PERCENT, CLIP = 30, 4, 10, 0.01, 20, 1.0


def _gptnb_cmd(run_dir, data, extra_train=None):
    train = dict(precision="fp32", micro_batch_size=MB, batch_size=2 * MB, lr=LR, schedule="warmup-cosine",
                 warmup_percent=PERCENT, grad_clip=CLIP, checkpoint_every=EVERY, eval_every=10, val_sequences=4,
                 test_sequences=16, compat="post")
    train.update(extra_train or {})
    return ["-m", "gptnb.train", "--run-dir", str(run_dir), "--dataset-dir", str(data), "--max-steps", str(STEPS),
            "--model-overrides", json.dumps(MODEL), "--train-overrides", json.dumps(train)]


def _torchrun(*args):
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", *args],
                         capture_output=True, text=True, env=ENV, cwd=HERE.parent)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]


@pytest.mark.slow
def test_post_mode_under_ddp_ends_bitwise_at_the_post_loops_weights(tmp_path):
    "2 gloo ranks, dropout 0.1, warm-up + cosine, clipping, 30 steps: gptnb compat='post' ≡ the post's loop."
    data = synthetic_dataset(tmp_path / "data", n_train=20_000, n_val=1_200)
    post_run = tmp_path / "post-run"; post_run.mkdir()
    (post_run / "model.json").write_text(json.dumps(MODEL))
    (post_run / "train.json").write_text(json.dumps({
        "microbatch_size": MB, "checkpoint_interval": EVERY, "min_train_tokens": STEPS * 2 * MB * MODEL["context_length"],
        "start_train_token": 0, "learning_rate": LR, "weight_decay": 0.1, "schedule_learning_rate": True,
        "warmup_period_percent": PERCENT, "clipping_max_norm": CLIP, "use_amp": False}))
    which = "post" if (POST_CODE / "gpt.py").is_file() else "ref"
    _torchrun(str(HERE / "post_reference_loop.py"), str(post_run), str(data), str(tmp_path / "ref"), "--model", which)
    _torchrun(*_gptnb_cmd(tmp_path / "ours", data))

    ref = load_file(str(tmp_path / "ref" / "model.safetensors"))
    ours = load_file(str(tmp_path / "ours" / "model.safetensors"))
    assert ref.keys() == ours.keys()
    for k in ref: assert torch.equal(ref[k], ours[k]), (k, (ref[k] - ours[k]).abs().max().item())
    summary = json.loads((tmp_path / "ref" / "summary.json").read_text())
    record = json.loads((tmp_path / "ours" / "record.json").read_text())
    assert record["world_size"] == summary["world_size"] == 2 and record["total_steps"] == summary["total_steps"] == STEPS
    assert record["final_train_loss"] == summary["final_train_loss"]          # rank 0's last interval mean, exactly
    best = (tmp_path / "ours" / "checkpoints" / "best").read_text().strip()
    assert best == f"step_{summary['best_step'] + 1:06d}"                     # chosen by the same rule
    rows = [json.loads(line) for line in (tmp_path / "ours" / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows if "lr" in r] == summary["lrs"]             # every step's learning rate
    # scored as the post scores its runs: on the `best` checkpoint, which the record names
    assert record["test_weights"] == f"best ({best})"
    tc = record["train_config"]
    protocol = PROTOCOLS["gptnb"].replace(sequences=tc["test_sequences"], batch_size=tc["micro_batch_size"])
    best_model = load_state(GPTModel(GPTConfig(**record["model_config"]), "post"),
                            read_checkpoint(tmp_path / "ours", "best").model_state)
    assert round(score(best_model, load_tokens(data / "validation.safetensors"), protocol).loss, 6) == record["test_loss"]


def _cli(run_dir, data):
    return [sys.executable, *_gptnb_cmd(run_dir, data, {"micro_batch_size": 2 * MB, "checkpoint_every": 5})]


@pytest.mark.slow
def test_post_mode_sigkill_and_resume_is_bit_exact(tmp_path):
    "Killed after a checkpoint and resumed, a post-mode run (dropout from the continuing stream) ends bit-exactly."
    data = synthetic_dataset(tmp_path / "data", n_train=20_000, n_val=1_200)
    subprocess.run(_cli(tmp_path / "straight", data), check=True, env=ENV, capture_output=True)
    straight = json.loads((tmp_path / "straight" / "record.json").read_text())
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed, data), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600   # a guard against a hang, not a speed limit: CI machines run loaded
    latest = killed / "checkpoints" / "latest"
    while not latest.exists() or latest.read_text().strip() < "step_000006":
        assert proc.poll() is None, "the run ended before its second checkpoint"
        assert time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert json.loads((killed / "record.json").read_text())["status"] == "running"   # it really died mid-run
    subprocess.run(_cli(killed, data), check=True, env=ENV, capture_output=True)
    resumed = json.loads((killed / "record.json").read_text())
    assert resumed["status"] == "complete" and resumed["resumed_from"]
    for k in ("final_weights_sha256", "final_train_loss", "test_loss"): assert resumed[k] == straight[k], k
    assert (killed / "checkpoints" / "best").read_text() == (tmp_path / "straight" / "checkpoints" / "best").read_text()
