"Checkpoints: corruption is detected and an intact earlier checkpoint is used, pointers stay inside the run folder, a failed write leaves no debris."
import errno
import os
import subprocess
import sys
import warnings

import pytest
import torch

import gptnb.checkpoints as ck
from gptnb.checkpoints import (CheckpointError, checkpoint_root, load_checkpoint, read_pointer, save_checkpoint,
                               verify_checkpoint)
from gptnb.model import GPTConfig, GPTModel
from gptnb.seeding import get_rng_state


def tiny_model(seed=0, tie=False):
    torch.manual_seed(seed)
    return GPTModel(GPTConfig(vocab_size=64, context_length=16, emb_dim=16, n_heads=2, n_layers=1, tie_weights=tie))


def run_state(step):
    "A state like the training loop's: scalars, strings, an optimizer state dict and nested RNG-state tensors."
    model = tiny_model(step)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.zeros(1, 4, dtype=torch.long)).sum().backward(); opt.step()
    return {"step": step, "elapsed_s": 1.5 * step, "loop_seed": 12345, "config_sha256": "ab" * 32,
            "best_val_loss": float("inf"), "optimizer": opt.state_dict(), "rng": [get_rng_state()]}


def save(run_dir, step, **kw):
    return save_checkpoint(run_dir, step, tiny_model(step).state_dict(), run_state(step), **kw)


def flip_byte(path, at=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if at is None else at
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def steps_on_disk(run_dir):
    return sorted(p.name for p in checkpoint_root(run_dir).glob("step_*"))


def assert_equal(a, b, where="state"):
    "Deep equality of nested dicts/lists/tuples of tensors and plain values."
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a: assert_equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)): assert_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


# round trip

def test_round_trip_returns_equal_tensors_and_state(tmp_path):
    model_state, state = tiny_model(3).state_dict(), run_state(3)
    path = save_checkpoint(tmp_path, 3, model_state, state)
    assert path == checkpoint_root(tmp_path) / "step_000003"
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.safetensors", "state.pt"]
    assert verify_checkpoint(path) == []
    got = load_checkpoint(tmp_path)
    assert got.step == 3 and got.path == path
    assert_equal(dict(model_state), got.model_state, "model_state")
    assert_equal(state, got.state)
    assert isinstance(got.state["rng"][0]["numpy"]["keys"], torch.Tensor)


def test_tied_weights_round_trip(tmp_path):
    model_state = tiny_model(tie=True).state_dict()
    assert model_state["out_head.weight"].data_ptr() == model_state["tok_emb.weight"].data_ptr()
    save_checkpoint(tmp_path, 1, model_state, {"step": 1})
    got = load_checkpoint(tmp_path).model_state
    assert_equal(dict(model_state), got, "model_state")


def test_no_checkpoints_is_none(tmp_path):
    assert load_checkpoint(tmp_path) is None
    checkpoint_root(tmp_path).mkdir()
    assert load_checkpoint(tmp_path) is None
    assert read_pointer(tmp_path) is None


# corruption: detected, and the intact earlier checkpoint is used

@pytest.mark.parametrize("name", ["model.safetensors", "state.pt"])
def test_flipped_byte_falls_back_to_the_earlier_checkpoint(tmp_path, name):
    save(tmp_path, 1); newest = save(tmp_path, 2)
    flip_byte(newest / name)
    assert any("sha256" in p and name in p for p in verify_checkpoint(newest))
    with pytest.warns(UserWarning, match=rf"step_000002.*{name}.*sha256|sha256.*{name}") as rec:
        got = load_checkpoint(tmp_path)
    assert got.step == 1 and got.path.name == "step_000001"
    assert str(newest / name) in str(rec[0].message)
    assert_equal(run_state(1), got.state)


def test_truncated_file_is_named_and_falls_back(tmp_path):
    save(tmp_path, 1); newest = save(tmp_path, 2)
    f = newest / "state.pt"
    size = f.stat().st_size
    with open(f, "r+b") as fh: fh.truncate(size // 2)
    problems = verify_checkpoint(newest)
    assert problems == [f"{f}: truncated: {size // 2} of {size} bytes"]
    with pytest.warns(UserWarning, match="truncated") as rec:
        assert load_checkpoint(tmp_path).step == 1
    assert str(f) in str(rec[0].message)


def test_only_checkpoint_corrupt_raises_naming_the_problem(tmp_path):
    only = save(tmp_path, 5)
    flip_byte(only / "model.safetensors")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path)
    msg = str(err.value)
    assert str(only / "model.safetensors") in msg and "sha256" in msg


def test_only_checkpoint_truncated_raises_saying_truncated(tmp_path):
    only = save(tmp_path, 5)
    with open(only / "model.safetensors", "r+b") as fh: fh.truncate(10)
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="truncated: 10 of"):
        load_checkpoint(tmp_path)


def test_missing_manifest_or_file_is_a_problem(tmp_path):
    save(tmp_path, 1); newest = save(tmp_path, 2)
    (newest / "state.pt").unlink()
    assert verify_checkpoint(newest) == [f"{newest / 'state.pt'}: missing"]
    (newest / "manifest.json").unlink()
    assert verify_checkpoint(newest) == [f"{newest / 'manifest.json'}: missing"]
    with pytest.warns(UserWarning, match="manifest.json"):
        assert load_checkpoint(tmp_path).step == 1


def test_pointer_to_missing_folder_falls_back_or_names_it(tmp_path):
    save(tmp_path, 1)
    (checkpoint_root(tmp_path) / "latest").write_text("step_000999")
    with pytest.warns(UserWarning, match="step_000999"):
        assert load_checkpoint(tmp_path).step == 1
    flip_byte(checkpoint_root(tmp_path) / "step_000001" / "state.pt")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="step_000999") as err:
        load_checkpoint(tmp_path)
    assert "step_000001" in str(err.value)   # every problem is named, not just the first


# pointers

def test_deleted_latest_pointer_is_an_error_not_a_restart(tmp_path):
    save(tmp_path, 1); save(tmp_path, 2)
    (checkpoint_root(tmp_path) / "latest").unlink()
    with pytest.raises(CheckpointError, match="latest") as err:
        load_checkpoint(tmp_path)
    assert str(checkpoint_root(tmp_path)) in str(err.value)


@pytest.mark.parametrize("content", ["../../elsewhere", "../x", "/tmp", "step_000001/../../x", "step_1", ""])
def test_pointer_must_name_a_step_folder(tmp_path, content):
    save(tmp_path, 1)
    (checkpoint_root(tmp_path) / "latest").write_text(content)
    with pytest.raises(ValueError, match="latest"):
        read_pointer(tmp_path)
    with pytest.raises(ValueError, match="latest"):
        load_checkpoint(tmp_path)


def test_pointer_through_a_symlink_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    save(outside, 7)
    run = tmp_path / "run"
    save(run, 1)
    root = checkpoint_root(run)
    (root / "step_000007").symlink_to(checkpoint_root(outside) / "step_000007", target_is_directory=True)
    (root / "latest").write_text("step_000007")
    with pytest.raises(ValueError, match="step_000007"):
        read_pointer(run)
    with pytest.raises(ValueError, match="step_000007"):
        load_checkpoint(run)


def test_read_pointer_returns_the_folder(tmp_path):
    save(tmp_path, 1, is_best=True); save(tmp_path, 2)
    assert read_pointer(tmp_path) == checkpoint_root(tmp_path) / "step_000002"
    assert read_pointer(tmp_path, "best") == checkpoint_root(tmp_path) / "step_000001"


# retention

def test_keep_two_keeps_the_last_two_plus_best(tmp_path):
    save(tmp_path, 10, is_best=True)
    for step in (20, 30, 40): save(tmp_path, step)
    assert steps_on_disk(tmp_path) == ["step_000010", "step_000030", "step_000040"]
    save(tmp_path, 50, is_best=True)
    assert steps_on_disk(tmp_path) == ["step_000040", "step_000050"]
    assert read_pointer(tmp_path, "best").name == "step_000050"
    assert read_pointer(tmp_path).name == "step_000050"


def test_keep_below_two_is_refused(tmp_path):
    with pytest.raises(ValueError, match="keep"):
        save(tmp_path, 1, keep=1)
    assert not checkpoint_root(tmp_path).exists() or not any(checkpoint_root(tmp_path).iterdir())


def test_stale_temp_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    root = checkpoint_root(tmp_path); root.mkdir(parents=True)
    (root / f".step_000004.tmp-{int(dead.stdout)}").mkdir()
    (root / f".step_000004.tmp-{os.getpid() + 0}").mkdir()   # a live process (this one) may still be writing it
    save(tmp_path, 5)
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".step")) == [f".step_000004.tmp-{os.getpid()}"]


def test_resaving_after_a_fallback_replaces_the_bad_timeline(tmp_path):
    save(tmp_path, 1); save(tmp_path, 2); bad = save(tmp_path, 3)
    flip_byte(bad / "model.safetensors")
    with pytest.warns(UserWarning):
        assert load_checkpoint(tmp_path).step == 2
    save(tmp_path, 3)   # training went on from step 2 and reached step 3 again
    assert verify_checkpoint(bad) == []
    assert load_checkpoint(tmp_path).step == 3


def test_folders_newer_than_latest_are_never_resumed(tmp_path):
    for step in (1, 2, 3): save(tmp_path, step, keep=3)
    (checkpoint_root(tmp_path) / "latest").write_text("step_000002")   # e.g. killed before the pointer moved
    assert load_checkpoint(tmp_path).step == 2
    flip_byte(checkpoint_root(tmp_path) / "step_000002" / "state.pt")
    with pytest.warns(UserWarning, match="step_000002"):
        assert load_checkpoint(tmp_path).step == 1


# a failed write leaves no debris

def _fail_with_enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("target", ["torch.save", "safetensors", "manifest"])
def test_full_disk_leaves_no_debris_and_the_previous_checkpoint_intact(tmp_path, monkeypatch, target):
    save(tmp_path, 1, is_best=True)
    root = checkpoint_root(tmp_path)
    before = {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    if target == "torch.save": monkeypatch.setattr(torch, "save", _fail_with_enospc)
    elif target == "safetensors": monkeypatch.setattr(ck, "save_file", _fail_with_enospc)
    else: monkeypatch.setattr(ck, "write_json_atomic", _fail_with_enospc)
    with pytest.raises(OSError) as err:
        save(tmp_path, 2, is_best=True)
    assert err.value.errno == errno.ENOSPC
    assert sorted(p.name for p in root.iterdir()) == ["best", "latest", "step_000001"]
    assert {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    monkeypatch.undo()
    assert load_checkpoint(tmp_path).step == 1


def test_failed_pointer_move_keeps_the_previous_checkpoint_current(tmp_path, monkeypatch):
    save(tmp_path, 1)
    monkeypatch.setattr(ck, "write_text_atomic", _fail_with_enospc)
    with pytest.raises(OSError):
        save(tmp_path, 2)
    monkeypatch.undo()
    assert read_pointer(tmp_path).name == "step_000001"
    assert load_checkpoint(tmp_path).step == 1


def test_state_that_cannot_be_loaded_weights_only_is_refused_at_save(tmp_path):
    save(tmp_path, 1)
    with pytest.raises(TypeError, match="weights_only"):
        save_checkpoint(tmp_path, 2, tiny_model().state_dict(), {"step": 2, "bad": object()})
    assert sorted(p.name for p in checkpoint_root(tmp_path).iterdir()) == ["latest", "step_000001"]


# a kill at any moment of the first checkpoint's write (issue 19)

def _first_write_killed_at(run_dir, moment):
    "The on-disk state a SIGKILL leaves at `moment` of writing a run's first checkpoint (step 1, is_best)."
    root = checkpoint_root(run_dir); root.mkdir(parents=True)
    tmp = root / f".step_000001.tmp-{2 ** 22 + 7}"   # a dead process's temp folder
    if moment == "folder half written":
        tmp.mkdir(); ck._write_folder(tmp, 1, tiny_model(1).state_dict(), run_state(1))
        (tmp / "manifest.json").unlink()
        return
    save(run_dir, 1, is_best=True)
    if moment == "installed, no pointer": (root / "latest").unlink(); (root / "best").unlink()
    if moment == "latest, no best": (root / "best").unlink()


@pytest.mark.parametrize("moment", ["folder half written", "installed, no pointer", "latest, no best", "done"])
def test_every_moment_of_the_first_checkpoint_write_resumes(tmp_path, moment):
    _first_write_killed_at(tmp_path, moment)
    ckpt = load_checkpoint(tmp_path)
    if moment == "folder half written": assert ckpt is None; return   # nothing was installed: from scratch
    assert ckpt.step == 1
    assert_equal(ckpt.model_state, tiny_model(1).state_dict(), "model")
    assert_equal(ckpt.state, run_state(1))
    save(tmp_path, 2)   # and training goes on from there
    assert load_checkpoint(tmp_path).step == 2


def test_a_lone_unpointed_checkpoint_that_does_not_verify_starts_over(tmp_path):
    _first_write_killed_at(tmp_path, "installed, no pointer")
    flip_byte(checkpoint_root(tmp_path) / "step_000001" / "state.pt")
    with pytest.warns(UserWarning, match="step_000001"):
        assert load_checkpoint(tmp_path) is None


def test_a_latest_symlink_out_of_the_run_is_refused_without_quoting_its_target(tmp_path):
    save(tmp_path / "run", 1)
    secret = tmp_path / "secret.txt"; secret.write_text("step_000001 TOP-SECRET-TEXT")
    latest = checkpoint_root(tmp_path / "run") / "latest"
    latest.unlink(); latest.symlink_to(secret)
    for read in (lambda: load_checkpoint(tmp_path / "run"), lambda: read_pointer(tmp_path / "run")):
        with pytest.raises(ValueError, match="latest is a symlink") as e: read()
        assert "TOP-SECRET" not in str(e.value)
