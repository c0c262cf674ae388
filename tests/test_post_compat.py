"""gptnb against the post's own code: the `post` evaluation protocol against a re-implementation of its test_loss.py
(and against its ddp_train.py batching where the reference checkout is there), every layout the post published its
models in, and the `gptnb evaluate` command."""
import json
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file, save_model as st_save_model

from gptnb.datasets import load_tokens, save_tokens
from gptnb.evaluate import PROTOCOLS, evaluate_main, load_checkpoint_model, read_model_config, score, windows_protocol
from gptnb.model import GPTConfig, GPTModel, save_model
from post_test_loss_reference import POST_CODE, post_module, reference_batches, reference_test_loss
from seed_reference import RefGPT

CFG = dict(vocab_size=97, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.1, qkv_bias=False)
SMALL = dict(start_token=1_000 + 128, batches=4, batch_size=2, context_length=16)


def _writer(kind: str, cfg: dict) -> nn.Module:
    "A randomly initialised model in the post's arithmetic: the post's own class, or the tests' re-implementation."
    torch.manual_seed(0)
    if kind == "post":
        gpt = post_module("gpt")
        if gpt is None: pytest.skip(f"the post's code is not at {POST_CODE}")
        model = gpt.GPTModel(cfg)
    else:
        model = RefGPT(cfg)
        if cfg.get("tie_weights"): model.out_head.weight = model.tok_emb.weight
    with torch.no_grad():  # off the initial values, so a wrong mapping cannot pass by symmetry
        for p in model.parameters(): p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _dataset(tmp_path, n=2_000, vocab=97):
    tokens = torch.from_numpy(np.random.default_rng(1).integers(0, vocab, n)).to(torch.int32)
    save_file({"tokens": tokens}, str(tmp_path / "validation.safetensors"))  # the post's layout: one 1-D tensor
    return tmp_path


def _gptnb_model(post_model, tmp_path, cfg) -> GPTModel:
    st_save_model(post_model, str(tmp_path / "w.safetensors"))
    return load_checkpoint_model(tmp_path / "w.safetensors", cfg)


@pytest.mark.parametrize("writer", ["post", "seed"])
def test_post_protocol_equals_the_reference_test_loss(tmp_path, writer):
    ref_model = _writer(writer, CFG)
    model = _gptnb_model(ref_model, tmp_path, CFG)
    tokens = load_tokens(_dataset(tmp_path) / "validation.safetensors")
    batches = reference_batches(tokens, SMALL["start_token"], SMALL["batches"], SMALL["batch_size"], 16)
    fp32 = PROTOCOLS["post"].replace(**SMALL, precision="fp32")
    ours = score(model, tokens, fp32)
    assert ours.loss == reference_test_loss(model, batches, torch.float32)  # same model: the same arithmetic
    assert abs(ours.loss - reference_test_loss(ref_model, batches, torch.float32)) < 1e-6
    assert ours.sequence_losses.dtype == np.float64 and ours.sequence_losses.shape == (8,)
    assert abs(ours.sequence_losses.mean() - ours.loss) < 1e-6
    with torch.no_grad():  # each per-sequence loss is that window's own mean token loss
        x = torch.cat([b[0] for b in batches]); y = torch.cat([b[1] for b in batches])
        direct = [torch.nn.functional.cross_entropy(ref_model(x[i:i + 1])[0], y[i]).item() for i in range(8)]
    np.testing.assert_allclose(ours.sequence_losses, direct, atol=1e-5)
    fp16 = score(model, tokens, PROTOCOLS["post"].replace(**SMALL))  # the post's precision, on the CPU
    assert abs(fp16.loss - reference_test_loss(model, batches, torch.float16)) < 1e-6
    assert abs(fp16.loss - reference_test_loss(ref_model, batches, torch.float16)) < 1e-2
    assert abs(fp16.sequence_losses.mean() - fp16.loss) < 1e-6


def test_reference_batching_is_the_posts_own(tmp_path):
    "The re-implementation cuts the same batches as ddp_train.load_dataset and reduces as its calculate_loss."
    ddp_train = post_module("ddp_train")
    if ddp_train is None: pytest.skip(f"the post's ddp_train.py cannot be imported from {POST_CODE}")
    folder = _dataset(tmp_path)
    theirs = ddp_train.load_dataset(folder, "validation", 4 * 2 * 16, 1_128, 1, 2, 16)
    ours = reference_batches(load_tokens(folder / "validation.safetensors"), 1_128, 4, 2, 16)
    assert len(theirs) == len(ours) == 4
    for i, (x, y) in enumerate(ours):
        assert torch.equal(theirs[i][0].long(), x) and torch.equal(theirs[i][1].long(), y)
    logits = torch.randn(2, 16, 97)
    assert ddp_train.calculate_loss(logits, ours[0][1]).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), ours[0][1].flatten()).item(), abs=0)


def _write(layout: str, model: nn.Module, cfg: dict, tmp_path):
    "Save `model` the way one of the post's publications lays it out; returns (path, model_config) to load it."
    if layout == "bare":
        st_save_model(model, str(tmp_path / "model.safetensors"))
        (tmp_path / "model.json").write_text(json.dumps(cfg))
        return tmp_path / "model.safetensors", tmp_path / "model.json"
    if layout == "post-run":   # runs/NAME/model.json + runs/NAME/checkpoints/best/model.safetensors
        (tmp_path / "checkpoints" / "best").mkdir(parents=True)
        st_save_model(model, str(tmp_path / "checkpoints" / "best" / "model.safetensors"))
        (tmp_path / "model.json").write_text(json.dumps(cfg))
        return tmp_path, None
    if layout == "upload":    # the model wrapped as `.model`, config.json {"cfg": ...}
        wrapper = nn.Module(); wrapper.model = model
        st_save_model(wrapper, str(tmp_path / "model.safetensors"))
        (tmp_path / "config.json").write_text(json.dumps({"cfg": cfg}))
        return tmp_path, None
    hub = pytest.importorskip("huggingface_hub")   # "mixin": an upload written by huggingface_hub itself

    class Upload(nn.Module, hub.PyTorchModelHubMixin):
        def __init__(self, cfg):
            super().__init__(); self.model = nn.Module()
    up = Upload(cfg); up.model = model
    up.save_pretrained(tmp_path / "upload")
    return tmp_path / "upload", None


@pytest.mark.parametrize("layout", ["bare", "post-run", "upload", "mixin"])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("writer", ["post", "seed"])
def test_every_published_layout_loads_to_the_same_logits(tmp_path, layout, tied, writer):
    cfg = {**CFG, "tie_weights": tied, "qkv_bias": tied}   # both variants of the post's interventions
    model = _writer(writer, cfg)
    path, model_config = _write(layout, model, cfg, tmp_path)
    ours = load_checkpoint_model(path, model_config).eval()
    assert ours.cfg == GPTConfig(**cfg)
    idx = torch.randint(0, cfg["vocab_size"], (3, 16), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx), model(idx), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("tied", [False, True])
def test_gptnb_files_and_run_folders_load(tmp_path, tied):
    torch.manual_seed(0); model = GPTModel(GPTConfig(**{**CFG, "tie_weights": tied})).eval()
    save_model(model, tmp_path / "model.safetensors")
    (tmp_path / "record.json").write_text("{}")
    idx = torch.randint(0, 97, (2, 16))
    for path in (tmp_path, tmp_path / "model.safetensors"):
        with torch.no_grad(): assert torch.equal(load_checkpoint_model(path).eval()(idx), model(idx))


def test_every_published_model_config_builds_the_posts_model():
    configs = sorted((POST_CODE / "runs").glob("*/model.json")) + sorted((POST_CODE / "runs-later").glob("*/model.json"))
    if not configs: pytest.skip(f"the post's run configs are not at {POST_CODE}")
    for path in configs:
        cfg = read_model_config(path)
        with torch.device("meta"): n = GPTModel(cfg).num_parameters()
        qkv_biases = 3 * cfg.emb_dim * cfg.n_layers if cfg.qkv_bias else 0
        assert n == (124_412_160 if cfg.tie_weights else 163_009_536) + qkv_biases, path


def test_the_gptnb_protocol_is_the_test_slice(tmp_path):
    torch.manual_seed(0); model = GPTModel(GPTConfig(**CFG))
    tokens = load_tokens(_dataset(tmp_path) / "validation.safetensors")
    s = score(model, tmp_path, PROTOCOLS["gptnb"].replace(sequences=10, batch_size=4))  # a partial last batch
    assert s.loss == score(model, tokens, windows_protocol(0, 10, 16, 4)).loss
    x = torch.from_numpy(np.asarray(tokens[:161]).astype(np.int64))
    with torch.no_grad():
        direct = torch.nn.functional.cross_entropy(model.eval()(x[:-1].view(10, 16)).flatten(0, 1), x[1:])
    assert abs(s.loss - direct.item()) < 1e-6 and abs(s.sequence_losses.mean() - s.loss) < 1e-6


def _cli_files(tmp_path):
    model = _writer("seed", CFG)
    path, model_config = _write("bare", model, CFG, tmp_path)
    (tmp_path / "data").mkdir()
    return model, path, model_config, _dataset(tmp_path / "data")


def test_evaluate_command_prints_the_posts_line(tmp_path, capsys):
    model, path, model_config, data = _cli_files(tmp_path)
    argv = [str(path), "--model-config", str(model_config), "--dataset-dir", str(data), "--start-token", "1128",
            "--batches", "4", "--batch-size", "2", "--context-length", "16", "--precision", "fp32", "--device", "cpu"]
    assert evaluate_main(argv) == 0
    out = capsys.readouterr().out
    line = out.strip().splitlines()[-1]
    assert re.fullmatch(r"Loss against our test dataset: \d+\.\d{6}", line), out
    tokens = load_tokens(data / "validation.safetensors")
    expected = reference_test_loss(model, reference_batches(tokens, 1128, 4, 2, 16), torch.float32)
    assert abs(float(line.split(": ")[1]) - expected) <= 1e-6


@pytest.mark.parametrize("flag, value, words", [("--protocol", "paper", ["'paper'", "gptnb", "post"]),
                                                ("--precision", "fp8", ["'fp8'", "fp32", "fp16", "bf16"]),
                                                ("--batches", "many", ["'many'"])])
def test_evaluate_command_rejects_bad_values_by_name(tmp_path, capsys, flag, value, words):
    with pytest.raises(SystemExit) as e:
        evaluate_main([str(tmp_path / "nowhere"), "--dataset-dir", str(tmp_path), flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err


@pytest.mark.parametrize("flags, words", [(["--start-token", "-5"], ["start_token must be an integer ≥ 0, got -5"]),
                                          (["--batch-size", "7"], ["sequences=19200", "batch_size=7"]),
                                          (["--device", "tpu"], ["device='tpu'", "valid choices"])])
def test_evaluate_command_checks_values_before_reading_files(tmp_path, capsys, flags, words):
    "The checkpoint does not exist: the error is about the value, so nothing was read first."
    assert evaluate_main([str(tmp_path / "nowhere"), "--dataset-dir", str(tmp_path / "none"), *flags]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "nowhere" not in err, err


def test_evaluate_command_says_how_many_tokens_are_missing(tmp_path, capsys):
    _, path, model_config, data = _cli_files(tmp_path)
    argv = [str(path), "--model-config", str(model_config), "--dataset-dir", str(data), "--context-length", "16",
            "--device", "cpu"]
    assert evaluate_main(argv) == 2
    err = capsys.readouterr().err
    for words in ("needs 50,307,201 validation tokens", "holds 2,000", "--start-token", "--batches"):
        assert words in err, err


def test_evaluate_command_takes_a_hub_dataset_id(tmp_path, capsys, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    _, path, model_config, data = _cli_files(tmp_path)
    monkeypatch.setenv("GPTNB_DATA_DIR", str(tmp_path / "cache"))
    calls = []

    def fake_download(repo_id, repo_type, local_dir, allow_patterns):
        calls.append(allow_patterns)
        (tmp_path / local_dir).mkdir(parents=True)
        save_tokens(f"{local_dir}/validation.safetensors", load_tokens(data / "validation.safetensors"))
    monkeypatch.setattr(hub, "snapshot_download", fake_download)
    argv = [str(path), "--model-config", str(model_config), "--dataset-dir", "hf:gpjt/fineweb-gpt2-tokens",
            *"--start-token 1128 --batches 4 --batch-size 2 --context-length 16 --device cpu".split()]
    assert evaluate_main(argv) == 0 and evaluate_main(argv) == 0
    assert calls == [["validation.safetensors"]]   # only the split it reads, and only once
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1] == lines[3] and lines[1].startswith("Loss against our test dataset: ")
