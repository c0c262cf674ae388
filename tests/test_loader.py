"Heavier loader checks (04_loader): token files of every kind, the microbatch formula, data seeds, resuming, fork safety, errors."
import os
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gptnb.datasets import load_manifest, load_tokens, prepare_token_dataset, save_tokens, token_dtype
from gptnb.loader import TokenBatches


# ---------------------------------------------------------------- token files, through load_tokens and the loader

def test_bad_token_files(tmp_path):
    save_file({"tokens": torch.zeros(3, 4, dtype=torch.int32)}, tmp_path / "rank2.safetensors")
    save_file({"tokens": torch.zeros(12, dtype=torch.bfloat16)}, tmp_path / "float.safetensors")
    save_file({"input_ids": torch.zeros(12, dtype=torch.int64)}, tmp_path / "named.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    save_tokens(tmp_path / "cut.safetensors", np.arange(100, dtype=np.uint16))
    with open(tmp_path / "cut.safetensors", "r+b") as f: f.truncate(f.seek(0, 2) - 2)
    for name, word in (("rank2", "[3, 4]"), ("float", "BF16"), ("named", "input_ids"), ("junk", "not a safetensors"),
                       ("cut", "truncated")):
        for load in (load_tokens, lambda p: TokenBatches(p, 1, 2)):
            with pytest.raises(ValueError) as err: load(tmp_path / f"{name}.safetensors")
            assert word in str(err.value) and name in str(err.value)
    with pytest.raises(FileNotFoundError, match="nope"): load_tokens(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64])
def test_any_integer_dtype_loads(tmp_path, dtype):
    save_file({"tokens": torch.from_numpy(np.arange(50).astype(dtype).astype(np.int64)).to(
        {np.uint8: torch.uint8, np.int16: torch.int16, np.uint16: torch.uint16, np.int32: torch.int32,
         np.uint32: torch.uint32, np.int64: torch.int64}[dtype])}, tmp_path / "t.safetensors")
    tokens = load_tokens(tmp_path / "t.safetensors")
    assert tokens.dtype == dtype and tokens[10:13].tolist() == [10, 11, 12]
    x, y = TokenBatches(tmp_path / "t.safetensors", 2, 4).get(1)
    assert x.dtype == torch.int64 and x.tolist() == [[8, 9, 10, 11], [12, 13, 14, 15]]
    assert token_dtype(50257) == np.uint16 and token_dtype(70000) == np.int32


# ---------------------------------------------------------------- the loader

@pytest.fixture(scope="module")
def counting(tmp_path_factory):
    path = tmp_path_factory.mktemp("loader") / "count.safetensors"
    save_tokens(path, np.arange(50_001, dtype=np.int32))
    return path


@pytest.mark.parametrize("B, T, ga, ws, seed", [(1, 1, 1, 1, None), (3, 7, 2, 1, None), (2, 16, 3, 4, None),
                                               (4, 5, 1, 3, 0), (2, 9, 2, 2, 123)])
def test_loader_follows_the_formula(counting, B, T, ga, ws, seed):
    tokens = load_tokens(counting)
    n_seq = (len(tokens) - 1) // T
    order = np.arange(n_seq) if seed is None else np.random.default_rng(seed).permutation(n_seq)
    loaders = [TokenBatches(counting, B, T, ga, ws, r, seed) for r in range(ws)]
    assert loaders[0].n_sequences == n_seq and loaders[0].steps_available == n_seq // (B * ga * ws)
    last = loaders[0].steps_available - 1
    for step in (0, 1, last // 2, last):
        used = []
        for accum in range(ga):
            for rank, tb in enumerate(loaders):
                i = (step * ga + accum) * ws + rank
                seqs = order[i * B:(i + 1) * B]
                x, y = tb.get(step, accum)
                assert x.shape == y.shape == (B, T) and x.dtype == y.dtype == torch.int64
                assert x.tolist() == [tokens[j * T:j * T + T].tolist() for j in seqs]
                assert y.tolist() == [tokens[j * T + 1:j * T + T + 1].tolist() for j in seqs]
                used += tb.sequence_indices(step, accum).tolist()
        # the ranks and accumulation steps split one global step's sequences with no overlap
        assert sorted(used) == sorted(order[step * B * ga * ws:(step + 1) * B * ga * ws].tolist())
    with pytest.raises(IndexError, match=str(last + 1)): loaders[0].get(last + 1)


def test_data_seed_is_a_reproducible_permutation(counting):
    a, b, c = (TokenBatches(counting, 4, 32, data_seed=s) for s in (1, 1, 2))
    assert sorted(a.order.tolist()) == list(range(a.n_sequences))
    assert np.array_equal(a.order, b.order) and not np.array_equal(a.order, c.order)
    assert torch.equal(a.get(7)[0], b.get(7)[0]) and not torch.equal(a.get(7)[0], c.get(7)[0])
    seen = np.concatenate([a.sequence_indices(s) for s in range(a.steps_available)])
    assert len(set(seen.tolist())) == len(seen) == a.steps_available * 4


def test_resume_and_iteration(counting):
    tb = TokenBatches(counting, 2, 64, grad_accum=2, data_seed=3)
    full = list(tb)
    assert len(full) == tb.steps_available * 2
    resumed = list(tb.iter_steps(start_step=100, n_steps=5))
    assert [(s, a) for s, a, _, _ in resumed] == [(s, a) for s, a, _, _ in full[200:210]]
    for (_, _, x1, y1), (_, _, x2, y2) in zip(resumed, full[200:210]):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    with pytest.raises(IndexError, match=str(tb.steps_available)): tb.iter_steps(tb.steps_available - 1, 2)
    assert list(tb.iter_steps(tb.steps_available)) == []


def test_loader_pickles_and_survives_fork(counting):
    tb = TokenBatches(counting, 3, 10, data_seed=4)
    x = tb.get(5)[0]
    clone = pickle.loads(pickle.dumps(tb))
    assert torch.equal(clone.get(5)[0], x)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reads through its own handle while the parent keeps reading
        ok = all(torch.equal(tb.get(s)[0], TokenBatches(counting, 3, 10, data_seed=4).get(s)[0]) for s in range(50))
        os.write(w, b"1" if ok else b"0"); os._exit(0)
    for s in range(50): tb.get(s)
    os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1"


def test_loader_errors(counting, tmp_path):
    save_tokens(tmp_path / "small.safetensors", np.arange(100, dtype=np.uint16))
    with pytest.raises(ValueError) as err: TokenBatches(tmp_path / "small.safetensors", 4, 8, grad_accum=2, world_size=2)
    for w in ("100 tokens", "12 sequences", "16 sequences", "batch_size 4", "grad_accum 2", "world_size 2"):
        assert w in str(err.value)
    for kwargs, word in (({"batch_size": 0}, "batch_size"), ({"context_length": -1}, "context_length"),
                         ({"grad_accum": 1.5}, "grad_accum"), ({"world_size": 0}, "world_size"),
                         ({"world_size": 2, "rank": 2}, "rank"), ({"rank": -1}, "rank"),
                         ({"data_seed": 2**32}, "data_seed")):
        args = {"batch_size": 2, "context_length": 8, **kwargs}
        with pytest.raises(ValueError, match=word): TokenBatches(counting, **args)
    tb = TokenBatches(counting, 2, 8, grad_accum=2)
    with pytest.raises(IndexError, match="accum_step 2"): tb.get(0, 2)
    with pytest.raises(IndexError, match="step -1"): tb.get(-1)
    with pytest.raises(ValueError, match="split"): TokenBatches(tmp_path, 2, 8, split="test")


def test_loader_reads_dataset_folders(tmp_path):
    for i in range(20): (tmp_path / f"{i:02}.txt").write_text(f"Document {i}. " * 40)
    out = prepare_token_dataset(tmp_path, tmp_path / "ds", vocab_size=8192, val_fraction=0.25)
    m = load_manifest(out)
    for split in ("train", "validation"):
        tb = TokenBatches(out, 2, 16, split=split)
        assert tb.n_tokens == m["splits"][split]["tokens"]
