"Cuts of the per-run overhead keep their numbers: test scoring bit for bit."
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gptnb.evaluate import PROTOCOLS, score, sequence_windows
from gptnb.model import GPTConfig, GPTModel


def two_cross_entropies(model, tokens, count, context_length, batch_size, aggregate):
    "The scoring loop as it was: cross_entropy once for the aggregate, once more for the per-token losses."
    total, n, means, per_sequence = 0.0, 0, [], []
    model.eval()
    with torch.no_grad():
        for i in range(0, count, batch_size):
            x, y = sequence_windows(tokens, i, min(batch_size, count - i), context_length)
            logits, y = model(x).float().flatten(0, 1), y.flatten()
            if aggregate == "token_mean": total += F.cross_entropy(logits, y, reduction="sum").item(); n += y.numel()
            else: means.append(F.cross_entropy(logits, y).item())
            per_token = F.cross_entropy(logits, y, reduction="none").view(x.shape)
            per_sequence.append(per_token.double().mean(1).numpy())
    return (total / n if aggregate == "token_mean" else sum(means) / len(means)), np.concatenate(per_sequence)


@pytest.mark.parametrize("aggregate", ["token_mean", "batch_mean"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scoring_is_bit_for_bit_what_two_cross_entropies_gave(aggregate, seed):
    cfg = GPTConfig(vocab_size=8192, context_length=32, emb_dim=32, n_heads=2, n_layers=2, drop_rate=0.1)
    torch.manual_seed(seed); model = GPTModel(cfg)
    tokens = np.random.default_rng(seed).integers(0, 8192, 40 * 32 + 1).astype(np.uint16)
    size = 6 if aggregate == "token_mean" else 5   # a partial last batch; batch_mean protocols need equal ones
    want_loss, want_seq = two_cross_entropies(model, tokens, 40, 32, size, aggregate)
    protocol = PROTOCOLS["gptnb"].replace(sequences=40, batch_size=size, aggregate=aggregate)
    scored = score(model, tokens, protocol)
    assert scored.loss == want_loss and np.array_equal(scored.sequence_losses, want_seq)   # exactly, not approximately
    alone = score(model, tokens, protocol, per_sequence=False)
    assert alone.sequence_losses is None and alone.loss == want_loss


def test_deterministic_mode_leaves_the_compiler_unloaded_and_sets_its_switch_for_when_it_loads():
    import subprocess, sys
    probe = ("import sys, torch; from gptnb.seeding import set_deterministic; set_deterministic(True); "
             "loaded = 'torch._inductor' in sys.modules; import torch._inductor.config as c; "
             "print(loaded, c.deterministic, torch.are_deterministic_algorithms_enabled())")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["False", "True", "True"], out.stdout + out.stderr


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_activation_memory_is_reused_by_the_next_batch_and_scores_are_unchanged():
    "glibc hands a freed 64 MiB block back to the OS; kept, the next batch's logits fault no fresh pages."
    import subprocess, sys
    probe = """
import resource, numpy as np, torch
from gptnb.evaluate import PROTOCOLS, keep_freed_memory, score
from gptnb.model import GPTConfig, GPTModel
def faults_of_a_second_block():
    torch.empty(1 << 24).fill_(1.0)          # 64 MiB, freed at once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(1 << 24).fill_(1.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
torch.manual_seed(0); model = GPTModel(GPTConfig(vocab_size=8192, context_length=32, emb_dim=32, n_heads=2, n_layers=1))
tokens = np.random.default_rng(0).integers(0, 8192, 300 * 32 + 1)
protocol = PROTOCOLS["gptnb"].replace(sequences=300, batch_size=150)   # 150 x 32 x 8192 fp32 logits: 150 MiB a batch
plain, faults_plain = score(model, tokens, protocol), faults_of_a_second_block()
applied = keep_freed_memory()
kept, faults_kept = score(model, tokens, protocol), faults_of_a_second_block()
print(applied, faults_plain, faults_kept, kept.loss == plain.loss, np.array_equal(kept.sequence_losses, plain.sequence_losses))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    applied, faults_plain, faults_kept, same_loss, same_sequences = out.stdout.split()
    assert applied == "True" and same_loss == same_sequences == "True", out.stdout + out.stderr
    assert int(faults_plain) > 10_000 > 100 > int(faults_kept), out.stdout   # 16,384 pages of 4 KiB a block, or none
