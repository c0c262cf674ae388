"""Training throughput of the tiny preset's model on this machine: precision (fp32, bf16, auto) × torch threads.

Each case runs `gptnb.train.train` on the `tiny` preset for a fixed number of optimizer steps (after warm-up steps
that are not timed) in a fresh subprocess, and reports tokens/s from the run's own per-step clock in metrics.jsonl;
the table ends with each case's ratio to fp32 at the same thread count, and the first lines name the CPU. This is
the measurement behind the tiny preset's `precision="auto"`: bf16 only where the CPU computes it natively.

    python bench/train_throughput.py [--steps 30] [--warmup 5] [--threads 1 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CASE = r"""
import json, sys, tempfile, torch
from pathlib import Path
from gptnb.config import RunSpec
from gptnb.train import train
precision, threads, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
out = tempfile.mkdtemp()
# the real training loop (gptnb.train), without evaluations or checkpoints inside the timed steps
summary = train(RunSpec(run_dir=out, max_steps=warmup + steps, train_overrides={
    "precision": precision, "checkpoint_every": 0, "eval_every": 0, "test_sequences": 16}))
rows = [json.loads(l) for l in (Path(out) / "metrics.jsonl").read_text().splitlines() if l.strip()]
first, last = rows[warmup - 1], rows[-1]  # one row per step (the tiny preset logs every step)
print(json.dumps({"tokens_per_s": (last["tokens"] - first["tokens"]) / (last["elapsed_s"] - first["elapsed_s"]),
                  "resolved": summary["precision"]}))
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    a = p.parse_args()
    from gptnb.config import hardware
    hw = hardware()
    print(f"CPU: {hw['cpu']} ({hw['cpu_count']} cores, torch capability {hw['cpu_capability']}, "
          f"native bf16: {hw['cpu_native_bf16']})")
    results, resolved = {}, {}
    for threads in a.threads:
        for precision in ("fp32", "bf16", "auto"):
            out = subprocess.run([sys.executable, "-c", CASE, precision, str(threads), str(a.steps), str(a.warmup)],
                                 capture_output=True, text=True, check=True)
            case = json.loads(out.stdout.strip().splitlines()[-1])
            results[(precision, threads)], resolved[precision] = case["tokens_per_s"], case["resolved"]
            print(f"  measured {precision} × {threads} thread(s): {case['tokens_per_s']:,.0f} tokens/s",
                  file=sys.stderr)
    print(f"{'precision':<14}{'threads':>8}{'tokens/s':>12}{'vs fp32':>9}")
    for (precision, threads), tps in results.items():
        label = f"auto → {resolved['auto']}" if precision == "auto" else precision
        print(f"{label:<14}{threads:>8}{tps:>12,.0f}{tps / results[('fp32', threads)]:>9.2f}")


if __name__ == "__main__":
    main()
