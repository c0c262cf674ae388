"""Training throughput of the tiny preset's model on this machine: precision × torch threads, side by side.

Each case trains the `tiny` model for a fixed number of optimizer steps on the embedded corpus (after warm-up
steps that are not timed) in a fresh subprocess, and reports tokens/s; the table ends with each case's ratio to
fp32 at the same thread count. This is the measurement behind the tiny preset's choice of bf16 autocast.

    python bench/train_throughput.py [--steps 30] [--warmup 5] [--threads 1 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CASE = r"""
import json, sys, time, torch
import torch.nn.functional as F
from gptnb.config import resolve
from gptnb.data import TokenBatches, prepare_token_dataset
from gptnb.model import GPTModel
from gptnb.train import autocast
precision, threads, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
m, t = resolve("tiny", "baseline")
data = prepare_token_dataset("embedded", vocab_size=8192)
batches = TokenBatches(data / "train.safetensors", t.micro_batch_size, m.context_length, t.grad_accum(1))
torch.manual_seed(0)
model = GPTModel(m)
opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
device = torch.device("cpu")
for step in range(warmup + steps):
    if step == warmup: t0 = time.perf_counter()
    for accum in range(t.grad_accum(1)):
        x, y = batches.get(step, accum)
        with autocast(device, precision):
            logits = model(x)
        F.cross_entropy(logits.float().flatten(0, 1), y.flatten()).backward()
    opt.step(); opt.zero_grad(set_to_none=True)
elapsed = time.perf_counter() - t0
print(json.dumps({"tokens_per_s": steps * t.tokens_per_step(m.context_length) / elapsed}))
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    a = p.parse_args()
    results = {}
    for threads in a.threads:
        for precision in ("fp32", "bf16"):
            out = subprocess.run([sys.executable, "-c", CASE, precision, str(threads), str(a.steps), str(a.warmup)],
                                 capture_output=True, text=True, check=True)
            results[(precision, threads)] = json.loads(out.stdout.strip().splitlines()[-1])["tokens_per_s"]
            print(f"  measured {precision} × {threads} thread(s): {results[(precision, threads)]:,.0f} tokens/s",
                  file=sys.stderr)
    print(f"{'precision':<10}{'threads':>8}{'tokens/s':>12}{'vs fp32':>9}")
    for (precision, threads), tps in results.items():
        print(f"{precision:<10}{threads:>8}{tps:>12,.0f}{tps / results[('fp32', threads)]:>9.2f}")


if __name__ == "__main__":
    main()
