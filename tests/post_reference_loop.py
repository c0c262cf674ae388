"""An independent re-implementation of the post's DDP training loop (github.com/gpjt/ddp-base-model-from-scratch at
d3699bc, `ddp_train.py`), written from its behaviour for the tests; no gptnb code is imported.

What it reproduces, step for step: every rank seeds Python's and torch's generators with the same seed and then
builds the model (dropout later draws from each rank's continuing stream); AdamW with PyTorch's default betas and
epsilon; the token file cut to whole global batches and reshaped into microbatches of consecutive sequences, rank
`r` at step `s` taking microbatch `s * world_size + r`; a `LinearLR` warm-up joined to a `CosineAnnealingLR` by a
`SequentialLR` (warm-up steps: `total * percent // 100`); optional fp16 autocast with a gradient scaler; clipping
of the global gradient norm; without a scaler, the step skipped when a gradient is not finite; the scheduler
stepped after every step; and the checkpoint bookkeeping: an interval closes after step `s` when
`s % checkpoint_interval == 0` or at the last step, rank 0's mean loss over it decides `best`, and the last
interval's mean is the final train loss.

Run it under torchrun (gloo on CPU):

    python -m torch.distributed.run --nproc_per_node 2 tests/post_reference_loop.py RUN_DIR DATA_DIR OUT_DIR [--model post|ref]

RUN_DIR holds the post-format `model.json` and `train.json`; DATA_DIR holds `train.safetensors`. Rank 0 writes
OUT_DIR/model.safetensors (the final weights) and OUT_DIR/summary.json (learning rates, interval means, best step).
`--model post` uses the post's own `gpt.py` from the reference folder; `--model ref` uses `seed_reference.RefGPT`.
"""
import argparse
import json
import random
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel as DDP

HERE = Path(__file__).resolve().parent
POST_CODE = HERE.parents[1] / "shared" / "reference" / "post-code"


def model_class(which: str):
    if which == "post":
        sys.path.insert(0, str(POST_CODE))
        from gpt import GPTModel
        return GPTModel
    sys.path.insert(0, str(HERE))
    from seed_reference import RefGPT
    return RefGPT


def microbatches(data_dir: Path, tc: dict, world_size: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    "(inputs, targets), each (n_microbatches, microbatch, context): the token file cut to whole global batches."
    tokens = load_file(str(data_dir / "train.safetensors"))["tokens"]
    per_batch = world_size * tc["microbatch_size"] * context
    wanted = -(-tc["min_train_tokens"] // per_batch) * per_batch
    start = tc.get("start_train_token", 0)
    cut = tokens[start:start + wanted + 1]
    assert len(cut) == wanted + 1, "not enough tokens"
    shape = (-1, tc["microbatch_size"], context)
    return cut[:-1].reshape(shape), cut[1:].reshape(shape)


def lr_scheduler(opt, tc: dict, total: int, lr: float):
    if not tc.get("schedule_learning_rate", False): return None
    warm = total * tc.get("warmup_period_percent", 0) // 100
    parts = [torch.optim.lr_scheduler.LinearLR(opt, start_factor=1e-5, end_factor=1.0, total_iters=warm),
             torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warm, eta_min=lr / 10)]
    return torch.optim.lr_scheduler.SequentialLR(opt, schedulers=parts, milestones=[warm])


def one_step(model, opt, scaler, x, y, clip, use_amp) -> float:
    opt.zero_grad(set_to_none=True)
    if use_amp:
        with torch.amp.autocast(device_type=x.device.type, dtype=torch.float16):
            loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
    else:
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
    (scaler.scale(loss) if scaler else loss).backward()
    if clip is not None:
        if scaler: scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if scaler:
        scaler.step(opt); scaler.update()
    elif all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None):
        opt.step()
    return loss.item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir"); ap.add_argument("data_dir"); ap.add_argument("out_dir")
    ap.add_argument("--model", choices=("post", "ref"), default="ref")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    mc = json.loads((Path(args.run_dir) / "model.json").read_text())
    tc = json.loads((Path(args.run_dir) / "train.json").read_text())
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    random.seed(args.seed); torch.manual_seed(args.seed); torch.cuda.manual_seed_all(args.seed)
    model = model_class(args.model)(mc)
    lr = tc.get("learning_rate", 0.0004)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=tc.get("weight_decay", 0.1))
    use_amp = tc.get("use_amp", True)
    scaler = torch.amp.GradScaler("cpu") if use_amp else None
    xs, ys = microbatches(Path(args.data_dir), tc, world, mc["context_length"])
    total = len(xs) // world
    sched = lr_scheduler(opt, tc, total, lr)
    ddp = DDP(model)

    interval, best, best_step, means, lrs = [], None, None, [], []
    for step in range(total):
        ddp.train()
        i = step * world + rank
        interval.append(one_step(ddp, opt, scaler, xs[i].long(), ys[i].long(), tc.get("clipping_max_norm"), use_amp))
        lrs.append(opt.param_groups[0]["lr"])
        if sched is not None: sched.step()
        if step % tc["checkpoint_interval"] == 0 or step == total - 1:
            mean = sum(interval) / len(interval)
            interval = []
            means.append([step, mean])
            if best is None or mean < best: best, best_step = mean, step

    if rank == 0:
        out = Path(args.out_dir); out.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith(".att.mask")}
        save_file(state, str(out / "model.safetensors"))
        summary = {"lrs": lrs, "interval_means": means, "best_step": best_step, "final_train_loss": means[-1][1],
                   "total_steps": total, "world_size": world, "model": args.model}
        (out / "summary.json").write_text(json.dumps(summary))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
