"""What the post's `test_loss.py` computes, re-implemented independently and on any slice, as the reference the `post`
evaluation protocol is checked against; plus access to the post's own code where a checkout has it.

The post's script reads the validation tokens from a start offset, cuts `batches × batch_size` windows of `seq_len`
tokens (targets one token to the right), runs the model under autocast with dropout off, and prints the mean of the
per-batch mean cross-entropies. Here the same arithmetic is written out directly, with the sizes and the autocast
dtype as arguments instead of constants."""
import importlib
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

POST_CODE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "post-code"


def post_module(name: str):
    "A module of the post's own code (gpt, ddp_train, ...), or None where the folder is absent or it cannot import."
    if not POST_CODE.is_dir(): return None
    if str(POST_CODE) not in sys.path: sys.path.append(str(POST_CODE))
    try: return importlib.import_module(name)
    except ImportError: return None


def reference_batches(tokens, start_token: int, batches: int, batch_size: int, seq_len: int):
    "(inputs, targets) pairs, each (batch_size, seq_len), laid out back to back from `start_token`."
    n = batches * batch_size * seq_len
    if start_token + n + 1 > len(tokens): raise ValueError("not enough tokens")
    flat = torch.from_numpy(np.asarray(tokens[start_token:start_token + n + 1]).astype(np.int64))
    xs, ys = flat[:-1].reshape(batches, batch_size, seq_len), flat[1:].reshape(batches, batch_size, seq_len)
    return [(xs[i], ys[i]) for i in range(batches)]


def reference_test_loss(model, batches, dtype=torch.float16, device="cpu") -> float:
    "Mean over batches of each batch's mean next-token cross-entropy; autocast to `dtype` unless it is float32."
    device = torch.device(device)
    model.eval()
    losses = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        for inputs, targets in batches:
            logits = model(inputs.to(device))
            losses.append(F.cross_entropy(logits.flatten(0, 1), targets.to(device).flatten()).item())
    return sum(losses) / len(losses)
