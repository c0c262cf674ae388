#!/usr/bin/env python3
"""Whole training runs on a GPU through the real door, `python -m gptnb.train`: records, checkpoints, resume, scoring.

`bench/device_check.py` times single optimizer steps; this script runs what a user runs, end to end, on a token
dataset of synthetic ids it writes first (no network, nothing installed: the repository is put on PYTHONPATH), and
checks what the CPU tests check, now on CUDA:

- gptnb's arithmetic (bf16 autocast, SDPA) at the gpt2-small shape, twice: both records `complete`, final weights
  bit-identical (sha256 from the records);
- the post's arithmetic (`compat="post"`, fp16 + GradScaler), once uninterrupted and once killed with SIGKILL right
  after its first checkpoint and rerun: the resumed run must end with the uninterrupted run's weights;
- a user intervention from a file (`examples/ideas.py:rmsnorm`, when that file exists): a complete record that names
  the file and its sha256.

It writes `device_train.json` (each run's status, steps, tokens/s, test loss and weights sha256, and the checks)
and prints a table. Sizes are small on purpose (40 steps of 12 × 1,024 tokens): the point is that every part of a
run works on the device, not its speed.

    python3 bench/device_train.py --out DIR                  # one CUDA GPU, about 3 minutes
    python3 bench/device_train.py --device cpu --tiny        # the same runs on a tiny model on the CPU
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_tokens(path: Path, n: int, vocab: int, seed: int) -> None:
    "A `tokens` tensor of `n` synthetic ids in the layout of the post's token files."
    import torch
    from safetensors.torch import save_file
    gen = torch.Generator().manual_seed(seed)
    save_file({"tokens": torch.randint(0, vocab, (n,), generator=gen, dtype=torch.int32)}, str(path))


def make_dataset(folder: Path, vocab: int, train_tokens: int, val_tokens: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_tokens(folder / "train.safetensors", train_tokens, vocab, 1)
    write_tokens(folder / "validation.safetensors", val_tokens, vocab, 2)
    return folder


def shape(args) -> dict:
    "The run parameters every case shares: preset, budget, a test set the synthetic validation split can hold."
    if args.tiny:
        return {"preset": "tiny", "max_steps": 6, "train": {"checkpoint_every": 3, "eval_every": 3, "val_sequences": 8,
                                                            "test_sequences": 16, "precision": "fp32"}}
    return {"preset": "gpt2-small", "max_steps": 40,
            "train": {"checkpoint_every": 20, "eval_every": 20, "val_sequences": 16, "test_protocol": "gptnb",
                      "test_sequences": 64, "micro_batch_size": 12, "batch_size": 12}}


def train_command(args, run_dir: Path, data: Path, intervention="baseline", **train) -> list[str]:
    s = shape(args)
    return [sys.executable, "-m", "gptnb.train", "--preset", s["preset"], "--run-dir", str(run_dir),
            "--dataset-dir", str(data), "--max-steps", str(s["max_steps"]), "--device", args.device,
            "--intervention", intervention, "--train-overrides", json.dumps({**s["train"], **train})]


def environment() -> dict:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def run(cmd: list[str], log: Path) -> int:
    with log.open("a") as out:
        return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=environment(), cwd=REPO).returncode


def run_killed_after_first_checkpoint(cmd: list[str], run_dir: Path, log: Path, timeout_s: float = 300) -> dict:
    "Start the run, SIGKILL it once its first checkpoint's `latest` pointer exists, then rerun it to the end."
    with log.open("a") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=environment(), cwd=REPO)
        pointer, start = run_dir / "checkpoints" / "latest", time.monotonic()
        while proc.poll() is None and not pointer.exists() and time.monotonic() - start < timeout_s: time.sleep(0.05)
        killed = proc.poll() is None
        if killed: os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    pointed = pointer.read_text().strip() if pointer.exists() else None
    return {"killed": killed, "killed_at": pointed, "rerun_rc": run(cmd, log)}


def summary(run_dir: Path, rc: int | None = None) -> dict:
    path = run_dir / "record.json"
    if not path.is_file(): return {"status": "no record", "rc": rc}
    r = json.loads(path.read_text())
    keep = ("status", "error", "total_steps", "tokens_seen", "tokens_per_s", "test_loss", "final_weights_sha256", "precision", "compat",
            "intervention", "intervention_sources", "train_flops", "flops_per_s", "resumed_from", "elapsed_s", "wall_s")
    return {"rc": rc, **{k: r[k] for k in keep if k in r}}


def cases(args, root: Path, data: Path, log: Path) -> dict:
    out = {}
    for name in ("gptnb_a", "gptnb_b"):
        out[name] = summary(root / name, run(train_command(args, root / name, data, compat="gptnb"), log))
    post = train_command(args, root / "post", data, compat="post")
    out["post"] = summary(root / "post", run(post, log))
    kill = run_killed_after_first_checkpoint(train_command(args, root / "post_killed", data, compat="post"),
                                             root / "post_killed", log)
    out["post_killed"] = {**summary(root / "post_killed", kill["rerun_rc"]), **kill}
    ideas = REPO / "examples" / "ideas.py"
    if ideas.is_file():
        cmd = train_command(args, root / "rmsnorm", data, intervention=f"{ideas}:rmsnorm", compat="gptnb")
        out["rmsnorm"] = summary(root / "rmsnorm", run(cmd, log))
    return out


def checks(runs: dict) -> dict:
    def sha(name): return runs.get(name, {}).get("final_weights_sha256")
    c = {"all_complete": all(r.get("status") == "complete" for r in runs.values()),
         "gptnb_repeat_bit_identical": sha("gptnb_a") is not None and sha("gptnb_a") == sha("gptnb_b"),
         "post_kill_resume_bit_identical": sha("post") is not None and sha("post") == sha("post_killed"),
         "post_run_was_killed": runs["post_killed"].get("killed")}
    if "rmsnorm" in runs: c["user_intervention_complete"] = runs["rmsnorm"].get("status") == "complete"
    return c


def table(runs: dict) -> str:
    lines = ["| run | status | precision | steps | tokens/s | TFLOP/s | test loss | weights sha256 |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for name, r in runs.items():
        tps, fps = r.get("tokens_per_s"), r.get("flops_per_s")
        lines.append(f"| {name} | {r.get('status')} | {r.get('precision', '—')} | {r.get('total_steps', '—')} | "
                     f"{f'{tps:,.0f}' if tps else '—'} | {f'{fps / 1e12:.1f}' if fps else '—'} | {r.get('test_loss', '—')} | {(r.get('final_weights_sha256') or '—')[:16]} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="folder for device_train.json (default: $OUT, else bench/results)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--tiny", action="store_true", help="the tiny preset (the CPU smoke run)")
    p.add_argument("--work", default=None, help="folder for the dataset and run folders (default: a temporary one)")
    a = p.parse_args(argv)
    out = Path(a.out or os.environ.get("OUT") or REPO / "bench" / "results"); out.mkdir(parents=True, exist_ok=True)
    import tempfile
    root = Path(a.work or tempfile.mkdtemp(prefix="gptnb-device-train-"))
    vocab = 8192 if a.tiny else 50257
    data = make_dataset(root / "data", vocab, 200_000 if a.tiny else 1_200_000, 60_000 if a.tiny else 300_000)
    log, started = out / "device_train.log", time.monotonic()
    runs = cases(a, root, data, log)
    result = {"device": a.device, "tiny": a.tiny, "runs": runs, "checks": checks(runs),
              "elapsed_s": round(time.monotonic() - started, 1)}
    (out / "device_train.json").write_text(json.dumps(result, indent=2, default=str))
    print(table(runs)); print(json.dumps(result["checks"], indent=2))
    return 0 if all(v for v in result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
