"Shared test fixtures: a synthetic token dataset and a small model config that trains in seconds."
from pathlib import Path

import torch
from safetensors.torch import save_file


def synthetic_dataset(path, n_train=100_000, n_val=6_000, vocab=64, seed=0) -> Path:
    """Token files of a noisy repeating pattern: learnable from context, so training visibly works, and noisy, so
    different seeds end at measurably different weights."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    pattern = torch.randperm(vocab, generator=g)
    for name, n in (("train", n_train), ("validation", n_val)):
        toks = pattern.repeat(n // vocab + 1)[:n].clone()
        noise = torch.rand(n, generator=g) < 0.1
        toks[noise] = torch.randint(0, vocab, (int(noise.sum()),), generator=g)
        save_file({"tokens": toks.to(torch.int32).contiguous()}, str(path / f"{name}.safetensors"))
    return path


def small_run_kwargs(data_dir, max_steps=20, **train_changes) -> dict:
    "RunSpec keyword arguments for a ~1-second run on the synthetic dataset."
    return dict(model_overrides=dict(vocab_size=64, context_length=32, emb_dim=32, n_heads=2, n_layers=2),
                train_overrides={**dict(precision="fp32", micro_batch_size=4, batch_size=8, checkpoint_every=0,
                                        eval_every=0, val_sequences=4, test_sequences=16, lr=0.01), **train_changes},
                dataset_dir=str(data_dir), max_steps=max_steps)
