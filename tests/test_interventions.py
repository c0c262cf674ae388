"Interventions in the user's own code: runs, records, refusals, failures, cost, DDP and kill-and-resume."
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gptnb.config import RunSpec
from gptnb.records import read_metrics, read_record
from gptnb.launch import EXIT_FOLDER_TAKEN, load_run_model, main, run_training
from helpers import small_run_kwargs, synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]

# a model change that adds a randomly initialised parameter, an optimizer with state, a schedule and a loss
IDEAS = '''
import torch
from torch import nn
from gptnb.interventions import Intervention

def add_gain(model, mcfg, tcfg):
    for block in model.trf_blocks:
        block.gain = nn.Parameter(1 + 0.1 * torch.randn(mcfg.emb_dim))
        block.register_forward_hook(lambda mod, inp, out: out * mod.gain)

gain_sgd = Intervention("gain-sgd", "a random per-block gain, SGD with momentum", model=add_gain,
                        optimizer=lambda model, t: torch.optim.SGD(model.parameters(), lr=t.lr, momentum=0.9))
warm = Intervention("warm", "linear warm-up over a quarter of the run",
                    schedule=lambda step, total: min(1.0, (step + 1) / max(1, total // 4)))
zloss = Intervention("z-loss", "cross-entropy + 1e-4 logsumexp^2",
                     loss=lambda z, y: torch.nn.functional.cross_entropy(z.flatten(0, 1), y.flatten())
                                       + 1e-4 * z.logsumexp(-1).pow(2).mean())
broken = Intervention("broken", "an optimizer hook that fails", optimizer=lambda model, t: 1 / 0)
'''


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture
def ideas(tmp_path):
    path = tmp_path / "ideas.py"
    path.write_text(IDEAS)
    return path


def _spec(tmp_path, data, intervention, name="run", **kw):
    return RunSpec(run_dir=str(tmp_path / name), intervention=intervention, **{**small_run_kwargs(data, max_steps=6), **kw})


def test_a_user_intervention_runs_and_the_record_names_its_source(tmp_path, data, ideas):
    rec = run_training(_spec(tmp_path, data, f"qkv-bias+{ideas}:gain-sgd+{ideas}:warm+{ideas}:z-loss"))
    assert rec["status"] == "complete", rec["error"]
    assert rec["interventions"] == ["qkv-bias", "gain-sgd", "warm", "z-loss"]
    sha = __import__("hashlib").sha256(ideas.read_bytes()).hexdigest()
    assert [(s["name"], s["file"], s["sha256"]) for s in rec["intervention_sources"]] == [
        (n, str(ideas), sha) for n in ("gain-sgd", "warm", "z-loss")]
    stored = json.loads((tmp_path / "run" / "record.json").read_text())["intervention_sources"]
    assert {s["file"] for s in stored} == {"../ideas.py"}   # from the run folder: never this machine's absolute path
    lr = read_metrics(tmp_path / "run")["lr"]
    assert lr[0] == pytest.approx(0.01 / 1) and lr[-1] == pytest.approx(0.01)   # 6 // 4 = 1: full after one step
    model = load_run_model(tmp_path / "run")
    assert hasattr(model.trf_blocks[0], "gain")
    assert rec["flops_per_token"] > 0 and rec["train_flops"] == rec["flops_per_token"] * rec["tokens_seen"]
    assert rec["flops_per_s"] == pytest.approx(rec["flops_per_token"] * rec["tokens_per_s"])
    assert rec["wall_s"] >= rec["elapsed_s"] > 0


def test_flops_follow_the_stated_convention(tmp_path, data):
    rec = run_training(_spec(tmp_path, data, "baseline", max_steps=1))
    m = rec["model_config"]   # vocab 64, context 32, emb 32, 2 layers, untied
    d, L, T, V = m["emb_dim"], m["n_layers"], m["context_length"], m["vocab_size"]
    per_block = (4 * d * d + d) + (8 * d * d + 5 * d) + 2 * 2 * d      # attention (q, k, v unbiased; out), MLP, 2 norms
    n = L * per_block + 2 * d + V * d                                   # + final norm + output head
    assert rec["flops_per_token"] == 6 * n + 12 * L * T * d


def test_a_relative_file_is_made_absolute_where_it_is_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = RunSpec(intervention="baseline+sub/ideas.py:rmsnorm+wd=train.weight_decay:0.05")
    assert spec.intervention == f"baseline+{tmp_path}/sub/ideas.py:rmsnorm+wd=train.weight_decay:0.05"
    assert spec.name() == "tiny-baseline+rmsnorm+wd-i42"


def test_the_examples_file_changes_the_model_and_the_optimizer(tmp_path, data):
    rec = run_training(_spec(tmp_path, data, f"{ROOT}/examples/ideas.py:rmsnorm+{ROOT}/examples/ideas.py:adamw-beta2-99"))
    assert rec["status"] == "complete", rec["error"]
    names = set(load_file(tmp_path / "run" / "model.safetensors"))
    assert "final_norm.weight" in names and "final_norm.shift" not in names
    base = run_training(_spec(tmp_path, data, "baseline", name="base"))
    assert rec["flops_per_token"] == base["flops_per_token"] - 6 * (2 * 2 + 1) * 32   # 5 norms lose a 32-wide shift


def test_a_changed_source_is_refused_and_nothing_is_written(tmp_path, data, ideas, capsys):
    spec = _spec(tmp_path, data, f"{ideas}:gain-sgd")
    assert run_training(spec)["status"] == "complete"
    record = tmp_path / "run" / "record.json"
    rec = json.loads(record.read_text()); rec["status"] = "running"; record.write_text(json.dumps(rec))
    assert read_record(tmp_path / "run")["status"] == "interrupted"   # as if killed mid-run
    ideas.write_text(IDEAS + "\n# edited\n")
    files = lambda: {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file() and p.name != ".lock"}
    before = files()
    argv = ["--run-dir", str(tmp_path / "run"), "--intervention", f"{ideas}:gain-sgd", "--max-steps", "6",
            "--dataset-dir", spec.dataset_dir, "--model-overrides", json.dumps(spec.model_overrides),
            "--train-overrides", json.dumps(spec.train_overrides)]
    assert main(argv) == EXIT_FOLDER_TAKEN
    assert "other source code for intervention(s) ['gain-sgd']" in capsys.readouterr().err
    assert files() == before   # the lock's holder line aside: the lock was taken to look


def test_an_import_error_ends_in_a_failed_record_naming_file_and_line(tmp_path, data):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nraise RuntimeError('not today')\n")
    with pytest.raises(ValueError, match="bad.py:2"):
        run_training(_spec(tmp_path, data, f"{bad}:idea"))
    rec = read_record(tmp_path / "run")
    assert rec["status"] == "failed" and f"{bad}:2: RuntimeError: not today" in rec["error"]


def test_a_hook_that_raises_ends_in_a_failed_record_naming_file_and_line(tmp_path, data, ideas):
    with pytest.raises(ValueError, match="optimizer hook raised"):
        run_training(_spec(tmp_path, data, f"{ideas}:broken"))
    rec = read_record(tmp_path / "run")
    line = IDEAS.splitlines().index(next(l for l in IDEAS.splitlines() if "1 / 0" in l)) + 1
    assert rec["status"] == "failed" and f"{ideas}:{line}: ZeroDivisionError" in rec["error"]


def test_missing_and_wrong_objects_say_what_was_expected(tmp_path, data, ideas):
    from gptnb.interventions import load_intervention
    with pytest.raises(ValueError, match="does not exist"): load_intervention(f"{tmp_path}/nope.py:x")
    with pytest.raises(ValueError, match=r"defines no intervention 'nope'; it defines \['broken', 'gain-sgd'"):
        load_intervention(f"{ideas}:nope")
    with pytest.raises(ValueError, match="add_gain is a function, expected"): load_intervention(f"{ideas}:add_gain")


def test_a_module_reference_and_the_posts_mode_with_a_model_change(tmp_path, data, monkeypatch):
    "`module:name` from an importable module; compat='post' scores its `best` checkpoint in the changed model."
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    kw = small_run_kwargs(data, max_steps=4, compat="post", checkpoint_every=2)
    rec = run_training(RunSpec(run_dir=str(tmp_path / "post"), intervention="ideas:rmsnorm", **kw))
    assert rec["status"] == "complete", rec["error"]
    assert rec["intervention_sources"][0]["module"] == "ideas" and rec["test_weights"].startswith("best")


def _cli(run_dir, data, ideas, steps, extra=()):
    kw = small_run_kwargs(data, max_steps=steps)
    kw["train_overrides"].update(checkpoint_every=10)
    kw["model_overrides"].update(drop_rate=0.1)
    return [sys.executable, "-m", "gptnb.train", "--run-dir", str(run_dir), "--dataset-dir", str(data),
            "--intervention", f"{ideas}:gain-sgd+{ideas}:warm", "--train-seed", "3", "--max-steps", str(steps),
            "--model-overrides", json.dumps(kw["model_overrides"]),
            "--train-overrides", json.dumps(kw["train_overrides"]), *extra]


@pytest.mark.slow
def test_torchrun_two_ranks_equal_one_process_accumulating_with_a_user_intervention(tmp_path, data, ideas):
    "2 gloo ranks × microbatch 4 == 1 process × 2 accumulation steps; a new random parameter, SGD, a user schedule."
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_cli(tmp_path / "single", data, ideas, 12), check=True, env=env, capture_output=True)
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          *_cli(tmp_path / "ddp", data, ideas, 12)[1:]], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    single, ddp = (read_record(tmp_path / n) for n in ("single", "ddp"))
    assert single["status"] == ddp["status"] == "complete" and ddp["nproc"] == 2   # torchrun's door: one record
    assert (single["grad_accum"], ddp["grad_accum"], ddp["world_size"]) == (2, 1, 2)
    assert single["initial_weights_sha256"] == ddp["initial_weights_sha256"]
    l1, l2 = read_metrics(tmp_path / "single")["loss"], read_metrics(tmp_path / "ddp")["loss"]
    assert len(l1) == len(l2) == 12 and max(abs(l1 - l2)) < 1e-5
    w1, w2 = (load_file(tmp_path / n / "model.safetensors") for n in ("single", "ddp"))
    assert "trf_blocks.0.gain" in w1
    for k in w1: torch.testing.assert_close(w1[k], w2[k], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sigkill_and_resume_is_bit_exact_with_a_user_optimizer_and_parameters(tmp_path, data, ideas):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_cli(tmp_path / "straight", data, ideas, 200), check=True, env=env, capture_output=True)
    straight = read_record(tmp_path / "straight")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed, data, ideas, 200), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600   # a guard against a hang, not a speed limit: CI machines run loaded
    while not (killed / "checkpoints" / "latest").exists():
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert json.loads((killed / "record.json").read_text())["status"] == "running"   # it really died mid-run
    assert read_record(killed)["status"] == "interrupted"                           # and reads so: its process is gone
    subprocess.run(_cli(killed, data, ideas, 200), check=True, env=env, capture_output=True)
    resumed = read_record(killed)
    assert resumed["status"] == "complete" and resumed["resumed_from"]
    for k in ("final_weights_sha256", "test_loss", "final_train_loss"):   # the recent losses travel in the checkpoint
        assert resumed[k] == straight[k], k
    assert read_metrics(killed)["step"].astype(int).tolist() == list(range(200))   # no metric line lost or repeated


@pytest.mark.slow
def test_gptnb_sweep_takes_a_relative_file_and_a_command_line_arm(tmp_path, data, ideas):
    "Typed in the user's directory; each run is a submitit job executing train.ipynb with papermill in another one."
    kw = small_run_kwargs(data, max_steps=2)
    res = subprocess.run(["gptnb", "sweep", "mine", "--interventions", "ideas.py:gain-sgd,wd=train.weight_decay:0.05",
                          "--init-seeds", "1", "--runs-dir", "runs", "--notebook", str(ROOT / "nbs" / "train.ipynb"),
                          "-p", "dataset_dir", str(data), "-p", "max_steps", "2",
                          "-p", "model_overrides", json.dumps(kw["model_overrides"]),
                          "-p", "train_overrides", json.dumps(kw["train_overrides"])],
                         cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    gain, wd = (read_record(tmp_path / "runs" / "mine" / n) for n in ("tiny-gain-sgd-i1", "tiny-wd-i1"))
    assert gain["status"] == wd["status"] == "complete"
    stored = json.loads((tmp_path / "runs" / "mine" / "tiny-gain-sgd-i1" / "record.json").read_text())
    assert stored["intervention_sources"][0]["file"] == "../../../ideas.py"   # from the run folder, never absolute
    assert gain["intervention"] == f"{ideas}:gain-sgd" and gain["intervention_sources"][0]["file"] == str(ideas)
    assert (wd["interventions"], wd["train_config"]["weight_decay"], wd["intervention_sources"]) == (["wd"], 0.05, [])


def test_a_record_stores_a_user_file_from_its_run_folder_and_reads_it_back_where_the_copy_lies(tmp_path, data, ideas):
    "The rule of the dataset's path, for the source and the parameter: a copy of the folder with the file beside it finds it."
    import hashlib, shutil
    run_training(_spec(tmp_path, data, f"{ideas}:warm", name="runs/r"))
    on_disk = json.loads((tmp_path / "runs" / "r" / "record.json").read_text())
    stored = on_disk["intervention_sources"][0]
    assert stored["file"] == "../../ideas.py" and on_disk["intervention"] == "../../ideas.py:warm"
    copy = tmp_path / "elsewhere"; copy.mkdir()
    shutil.copytree(tmp_path / "runs", copy / "runs"); shutil.copy(ideas, copy / "ideas.py"); ideas.unlink()
    back = read_record(copy / "runs" / "r")
    found = Path(back["intervention_sources"][0]["file"])
    assert found == copy / "ideas.py" and hashlib.sha256(found.read_bytes()).hexdigest() == stored["sha256"]
    assert back["intervention"] == f"{copy / 'ideas.py'}:warm"   # the run's parameter, runnable where the copy lies