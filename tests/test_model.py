"Heavier model checks: compatibility with the seed code's checkpoints and initialisation."
import pytest
import torch
from safetensors.torch import save_file

from gptnb.model import GPTConfig, GPTModel, load_model
from seed_reference import RefGPT

CFG = dict(vocab_size=211, context_length=32, emb_dim=64, n_heads=4, n_layers=3, drop_rate=0.1, qkv_bias=False)


def test_sequential_init_matches_seed_code():
    "Seeding torch and building the model draws the same initial weights as the seed code does."
    torch.manual_seed(42); ref = RefGPT(CFG)
    torch.manual_seed(42); ours = GPTModel(GPTConfig(**CFG))
    ref_sd = {k: v for k, v in ref.state_dict().items() if not k.endswith(".att.mask")}
    ours_sd = ours.state_dict()
    assert list(ref_sd) == list(ours_sd)  # same names, same order
    for k in ref_sd:
        assert torch.equal(ref_sd[k], ours_sd[k]), k
    # and the global generator is left in the same place, so what happens after model creation matches too
    torch.manual_seed(42); RefGPT(CFG); a = torch.rand(3)
    torch.manual_seed(42); GPTModel(GPTConfig(**CFG)); b = torch.rand(3)
    assert torch.equal(a, b)


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_seed_code_checkpoint_gives_same_logits(tmp_path, qkv_bias):
    cfg = {**CFG, "qkv_bias": qkv_bias}
    torch.manual_seed(0)
    ref = RefGPT(cfg).eval()
    with torch.no_grad():  # move weights off their init so the test is not trivially about defaults
        for p in ref.parameters(): p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))  # mask buffers included
    ours = load_model(path, GPTConfig(**cfg)).eval()
    idx = torch.randint(0, cfg["vocab_size"], (2, 32))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx), ref(idx), rtol=1e-5, atol=1e-5)


def test_checkpoint_key_errors_name_every_problem(tmp_path):
    model = GPTModel(GPTConfig(**CFG))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    sd.pop("final_norm.scale")
    sd["extra.weight"] = torch.zeros(2)
    path = tmp_path / "bad.safetensors"
    save_file(sd, str(path))
    with pytest.raises(ValueError) as e:
        load_model(path, GPTConfig(**CFG))
    assert "final_norm.scale" in str(e.value) and "extra.weight" in str(e.value)
