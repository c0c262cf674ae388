"""gptnb's model against the post's model class, one fp32 training step at a time, side by side in one run.

The post's model is the book's `GPTModel` ("Build a Large Language Model (from Scratch)", chapter 4), which the
`llms-from-scratch` package ships. Both models are built at the same shape and hold the same weights (the layouts
are the same, so gptnb's state dict loads into the book's model unchanged; the script checks the logits agree),
then each is timed on the same batches: forward, cross-entropy, backward, AdamW step. Rounds alternate between the
two models so that a busy neighbour slows both alike; the table gives the median step time, tokens/s, the ratio
gptnb / post, a third model — gptnb's with Q, K and V fused into one matmul — against gptnb's, and the model FLOP/s as a fraction of the sgemm rate measured here in the same run (FLOPs per token
= 6·N + 12·n_layers·context·emb_dim; dropout as in the tiny preset).

    pip install --no-deps llms-from-scratch==1.0.19   # its metadata pulls TensorFlow and pins numpy<2.1: not needed here
    python bench/peer_throughput.py [--steps 20] [--rounds 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
import types

import torch
import torch.nn.functional as F

from gptnb.config import hardware
from gptnb.model import GPTConfig, GPTModel

SHAPES = {  # name: (model config, microbatch)
    "tiny": (GPTConfig(vocab_size=8192, context_length=128, emb_dim=128, n_heads=4, n_layers=4, drop_rate=0.1), 16),
    "mid": (GPTConfig(vocab_size=8192, context_length=256, emb_dim=384, n_heads=6, n_layers=6, drop_rate=0.1), 8),
}


def post_model(cfg: GPTConfig):
    "The book's GPTModel at `cfg`, or a clear error naming the install command."
    try:
        from llms_from_scratch.ch04 import GPTModel as BookGPT
    except ImportError:
        raise SystemExit("the post's model class comes from llms-from-scratch: "
                         "pip install --no-deps llms-from-scratch==1.0.19") from None
    return BookGPT({k: getattr(cfg, k) for k in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers",
                                                 "drop_rate", "qkv_bias")})


def same_model_pair(cfg: GPTConfig) -> tuple:
    "gptnb's model and the post's, holding the same weights (checked on one batch's logits)."
    torch.manual_seed(0)
    ours, theirs = GPTModel(cfg), post_model(cfg)
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    if unexpected or any(not k.endswith(".att.mask") for k in missing):   # the book keeps its causal mask as a buffer
        raise SystemExit(f"state dicts differ: missing {missing}, unexpected {unexpected}")
    ours.eval(), theirs.eval()
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.context_length))
    with torch.no_grad(): gap = (ours(idx) - theirs(idx)).abs().max().item()
    if gap > 1e-4: raise SystemExit(f"the two models disagree by {gap:.2e} on the same weights: not the same computation")
    return ours.train(), theirs.train()


def fuse_qkv(model: GPTModel) -> GPTModel:
    """The same model with Q, K and V computed by one matmul over the concatenated weights (state dict unchanged):
    the candidate speed-up, measured here before it goes into gptnb.model."""
    def forward(att, x):
        b, t, d = x.shape
        w = torch.cat([att.W_query.weight, att.W_key.weight, att.W_value.weight])           # (3d, d)
        bias = None if att.W_query.bias is None else torch.cat([att.W_query.bias, att.W_key.bias, att.W_value.bias])
        q, k, v = F.linear(x, w, bias).view(b, t, 3, att.n_heads, att.head_dim).permute(2, 0, 3, 1, 4)  # 3 × (b, h, t, d/h)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=att.drop_rate if att.training else 0.0, is_causal=True)
        return att.out_proj(out.transpose(1, 2).reshape(b, t, d))
    for block in model.trf_blocks: block.att.forward = types.MethodType(forward, block.att)
    return model


def step_seconds(model, batches, steps: int) -> list[float]:
    "Wall time of each of `steps` optimizer steps (forward, loss, backward, AdamW)."
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
    times = []
    for i in range(steps):
        x, y = batches[i % len(batches)]
        start = time.perf_counter()
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        times.append(time.perf_counter() - start)
    return times


def sgemm_flops(n: int = 1024, repeats: int = 20) -> float:
    "fp32 FLOP/s of an n×n×n matmul on this machine, best of `repeats` after a warm-up."
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def _timed(fn) -> float:
    start = time.perf_counter(); fn(); return time.perf_counter() - start


def flops_per_token(cfg: GPTConfig, n_params: int) -> int:
    return 6 * n_params + 12 * cfg.n_layers * cfg.context_length * cfg.emb_dim


def compare(name: str, steps: int, rounds: int, peak: float) -> dict:
    cfg, micro = SHAPES[name]
    ours, theirs = same_model_pair(cfg)
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randint(0, cfg.vocab_size, (micro, cfg.context_length), generator=gen),
                torch.randint(0, cfg.vocab_size, (micro, cfg.context_length), generator=gen)) for _ in range(4)]
    models = {"gptnb": ours, "post": theirs, "gptnb_fused_qkv": fuse_qkv(copy.deepcopy(ours))}
    timed = {who: [] for who in models}
    for model in models.values(): step_seconds(model, batches, 2)      # warm-up, not timed
    for _ in range(rounds):                                            # alternate: a busy neighbour slows all alike
        for who, model in models.items(): timed[who] += step_seconds(model, batches, steps)
    tokens, fpt = micro * cfg.context_length, flops_per_token(cfg, ours.num_parameters())
    row = {"shape": name, "parameters": ours.num_parameters(), "tokens_per_step": tokens}
    for who, times in timed.items():
        median = statistics.median(times)
        row[who] = {"step_s": median, "tokens_per_s": tokens / median, "fraction_of_sgemm": tokens * fpt / median / peak}
    row["ratio"] = row["gptnb"]["tokens_per_s"] / row["post"]["tokens_per_s"]
    row["fused_ratio"] = row["gptnb_fused_qkv"]["tokens_per_s"] / row["gptnb"]["tokens_per_s"]
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="timed steps per model per round")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--shapes", default="tiny,mid", help=f"comma-separated subset of {list(SHAPES)}")
    a = p.parse_args(argv)
    shapes = [s.strip() for s in a.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown: p.error(f"unknown shape(s) {unknown}; valid: {list(SHAPES)}")
    if a.threads: torch.set_num_threads(a.threads)
    hw = hardware()
    peak = sgemm_flops()
    print(f"CPU: {hw['cpu']} ({hw['cpu_count']} cores), torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"measured sgemm (1024³ fp32): {peak / 1e9:,.1f} GFLOP/s")
    print(f"{'shape':<6}{'params':>12}{'gptnb tok/s':>13}{'post tok/s':>12}{'gptnb/post':>12}"
          f"{'gptnb % sgemm':>15}{'post % sgemm':>14}{'fused QKV/gptnb':>17}")
    rows = [compare(s, a.steps, a.rounds, peak) for s in shapes]
    for r in rows:
        print(f"{r['shape']:<6}{r['parameters']:>12,}{r['gptnb']['tokens_per_s']:>13,.0f}{r['post']['tokens_per_s']:>12,.0f}"
              f"{r['ratio']:>12.2f}{100 * r['gptnb']['fraction_of_sgemm']:>14.1f}%{100 * r['post']['fraction_of_sgemm']:>13.1f}%"
              f"{r['fused_ratio']:>17.2f}")
    return rows


if __name__ == "__main__":
    main()
