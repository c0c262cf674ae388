"""bench/device_check.py, the one-command GPU check, run here on the CPU with a tiny model: every section runs (the
compiled ones are skipped on the CPU), and the JSON and Markdown say what it measured, what failed and what is missing."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ["env", "train_eager_gptnb", "train_eager_post", "eval_post_protocol", "determinism",
            "train_compiled_gptnb", "microbatch_gptnb", "microbatch_post", "train_compiled_post"]


def run_check(out: Path, *flags: str) -> subprocess.CompletedProcess:
    "The script as the README runs it on the CPU, writing into `out` through $OUT, its default output folder."
    env = {**os.environ, "OUT": str(out), "OMP_NUM_THREADS": "1"}
    # the timeout guards against a hang: compiling on a loaded CI machine takes minutes
    return subprocess.run([sys.executable, "bench/device_check.py", "--device", "cpu", "--tiny", *flags], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_cpu_tiny_run_writes_every_section(tmp_path):
    r = run_check(tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    d = json.loads((tmp_path / "device_check.json").read_text())
    assert d["schema"] == "gptnb.device_check/1" and d["status"] == "complete" and d["tiny"] and d["device"] == "cpu"
    assert d["finished_utc"] and d["elapsed_s"] < d["budget_s"]
    assert {"python", "torch", "cuda", "device_name", "capability", "driver"} <= set(d["environment"])
    assert d["peak"]["tflops"] is None and "MFU is null" in d["peak"]["note"]
    assert d["model"]["flops_formula"] == "6·N + 12·n_layers·context·emb_dim"
    cfg, n = d["model"]["config"], d["model"]["parameters"]
    assert d["model"]["flops_per_token"] == 6 * n + 12 * cfg["n_layers"] * cfg["context_length"] * cfg["emb_dim"]
    ref = d["post_reference"]
    assert round(ref["tokens_per_s_per_gpu"]) == 33_197 and ref["flops_per_token"] == 6 * 163_009_536 + 12 * 12 * 1024 * 768
    assert ref["mfu_vs_a100_peak"] == pytest.approx(0.1161, abs=1e-4)
    assert d["imports"]["missing"] == [] and all(v == "ok" for v in d["imports"]["gptnb"].values())

    s = d["sections"]
    assert list(s) == SECTIONS
    for name, sec in s.items():
        expected = "skipped" if "compiled" in name else "ok"
        assert sec["status"] == expected, (name, sec)
    for name, compat in (("train_eager_gptnb", "gptnb"), ("train_eager_post", "post")):
        r_ = s[name]["result"]
        assert r_["compat"] == compat and r_["precision"] == {"gptnb": "bf16", "post": "fp16"}[compat]
        assert r_["tokens_per_s"] > 0 and r_["mfu"] is None and r_["peak_memory_bytes"] is None
        assert r_["timed_steps"] >= 1 and r_["deterministic"] and "optimizer_step" in r_["code_path"]
    assert "C++ toolchain" in s["train_compiled_gptnb"]["note"]
    for mode, m in s["determinism"]["result"]["modes"].items():
        assert m["bit_identical"] and m["run_a"]["initial_sha256"] == m["run_b"]["initial_sha256"], mode
        assert m["tokens_per_s_with_flags"] > 0 and m["tokens_per_s_without_flags"] > 0
    e = s["eval_post_protocol"]["result"]
    assert e["protocol_batches"] == 3200 and [run["mode"] for run in e["runs"]] == ["post", "gptnb"]
    assert all(run["extrapolated_s"] == pytest.approx(run["per_batch_s"] * 3200) and run["precision"] == "fp16"
               for run in e["runs"])
    for name in ("microbatch_gptnb", "microbatch_post"):
        mb = s[name]["result"]
        assert mb["largest"] == mb["limit"] == 4 and [t["size"] for t in mb["trials"]] == [1, 2, 4]

    md = (tmp_path / "device_check.md").read_text()
    assert md.startswith("# gptnb device check")
    for heading in ("## Training throughput", "## Largest microbatch", "## Determinism", "## The post's test protocol",
                    "## Sections"):
        assert heading in md
    assert "| the post, per GPU |" in md and "33,197" in md and "| train_eager_gptnb |" in md
    assert md in r.stdout   # the table is printed too: the device run's output shows it


@pytest.mark.slow
def test_missing_module_and_timeout_are_reported(tmp_path):
    "A module gptnb imports but the check never calls is named and stood in for; a section over its limit is cut."
    r = run_check(tmp_path, "--simulate-missing", "tiktoken", "--sections", "env,determinism", "--limit-scale", "0.001")
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]   # a timeout: complete with failures
    assert "MISSING Python module 'tiktoken'" in r.stdout and "--find-links .device_wheels tiktoken" in r.stdout
    d = json.loads((tmp_path / "device_check.json").read_text())
    assert [m["module"] for m in d["imports"]["missing"]] == ["tiktoken"] and d["imports"]["stubbed"] == ["tiktoken"]
    assert d["imports"]["gptnb"]["gptnb.train"] == "ok"
    assert list(d["sections"]) == ["env", "determinism"] and d["sections"]["env"]["status"] == "ok"
    assert d["sections"]["determinism"]["status"] == "timeout" and d["status"] == "complete with failures"
    assert "TIMEOUT: over its 1 s limit" in (tmp_path / "device_check.md").read_text()


@pytest.mark.slow
def test_missing_numpy_is_fatal_and_named(tmp_path):
    r = run_check(tmp_path, "--simulate-missing", "numpy")
    assert r.returncode == 2 and "MISSING Python module 'numpy'" in r.stdout, r.stdout + r.stderr
    d = json.loads((tmp_path / "device_check.json").read_text())
    assert d["status"] == "fatal" and d["sections"] == {} and "numpy" in d["error"]
