"""Execute the numbered notebooks and compare their text outputs with the committed ones, or write them.

    python tools/check_outputs.py            # CI: re-execute every numbered notebook, fail where an output changed
    python tools/check_outputs.py --write    # after editing a notebook: execute it and commit what it shows
    python tools/check_outputs.py --write 10_train   # only some notebooks (names or stems)

A notebook's outputs are part of what it teaches, so they must be what its code produces. The comparison is on
text (stdout, and the text form of every result and display), after masking what legitimately varies between two
executions: temporary paths, memory addresses, pids, dates, durations and rates. Numbers are compared with a
relative tolerance of 1e-3, so a different CPU's rounding in the last digits does not fail the check but a changed
result does. Cells tagged `machine` (their output describes the machine, e.g. its CPU) are executed but not
compared.

Committed outputs must also be clean, which no mask may hide: the noise check fails on any stderr output (warnings,
progress bars), an absolute path of a machine (/tmp/…, /home/…, a venv's site-packages), a printed Python warning,
a pid, a host name or a timestamp, and a progress bar drawn in chunks (a carriage return in stdout), both in the
committed outputs and in what a fresh execution shows. It names the notebook, the code cell and the offending text.
`machine` cells are not exempt: a CPU's name is fine there, a path or a pid is not. `--write` reports the noise of
what it wrote (and exits 1 if any); `--noise-only` checks the committed outputs alone, executing nothing:

    python tools/check_outputs.py --noise-only   # every numbered notebook, in seconds
"""
from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
MASKS = [  # (pattern, replacement), applied in order
    (re.compile(r"\x1b\[[0-9;]*[A-Za-z]"), ""),
    (re.compile(r"0x[0-9a-fA-F]{6,}"), "0xADDR"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "DATE"),
    (re.compile(r"\d{8}T\d{6}Z?"), "DATE"),
    (re.compile(r"(?<![\w.])/(?:[\w.+@-]+/)*[\w.+@-]+"), "PATH"),
    (re.compile(r"\bpid \d+"), "pid N"),
    (re.compile(r"'pid': \d+"), "'pid': N"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "HEX"),   # hashes and random tokens
    (re.compile(r"[\d,]+(\.\d+)?\s*(ms|s|secs?|seconds|tokens/s(econd)?|it/s|s/it|MB|GB|MiB|GiB)\b"), "AMOUNT"),
]
# what a committed output may never show (the masks above hide the same things from the comparison, so a separate
# check is needed). A path is absolute when its `/` starts a token (not after a word character, `.`, `:`, `/`, `~`,
# `%`, `-` or the end of a placeholder, so `gptnb/train.py`, `a/b`, `tokens/s`, `~/.cache`, `<cwd>/x/y`, `{root}/x/y`
# and URLs pass) and has two parts (`/s` passes).
NOISE = [  # (what it is, pattern); a warning line first, so the path inside it is not named again
    ("warning", re.compile(r"^\s*(?:\S+:\d+: )?(?:[A-Z]\w*)?Warning: .*", re.MULTILINE)),   # what `warnings` prints
    ("warning", re.compile(r"^WARNING:.*", re.MULTILINE)),                               # what `logging` prints
    ("absolute path", re.compile(r"(?<![\w.:/~%>}\]!-])/[A-Za-z_.][\w.+@%-]*(?:/[\w.+@%-]*)+")),
    ("absolute path", re.compile(r"\b[A-Za-z]:\\[\w .-]+\\")),                      # C:\Users\…
    ("venv path", re.compile(r"(?:[\w.-]+/)+(?:site|dist)-packages/\S*")),   # which venv, which Python
    ("pid", re.compile(r"['\"]?\bpid\b['\"]?[ =:]+\d+", re.IGNORECASE)),
    ("host", re.compile(r"['\"]?\bhost(?:name)?['\"]?\s*[:=]\s*['\"]?[\w.-]+")),
    ("host", re.compile(r"\bon [\w.-]+ since\b")),
    ("timestamp", re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?|\b\d{8}T\d{6}Z?\b")),
]
NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def cell_text(cell) -> str:
    "What a reader sees of a code cell's output, as text (stdout and every result's text/plain)."
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout": parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            data = out.get("data", {})
            parts.append(data.get("text/plain", "") if "text/plain" in data else f"<{sorted(data)}>")
        elif out.get("output_type") == "error": parts.append(f"ERROR {out.get('ename')}: {out.get('evalue')}")
    return "".join(p if isinstance(p, str) else "".join(p) for p in parts)


def noisy_text(text: str) -> list[tuple[str, str]]:
    "(kind, offending text) for each piece of noise in an output's text; a piece is named once, by its first kind."
    hits, taken = [], []
    for kind, pattern in NOISE:
        for m in pattern.finditer(text):
            if any(m.start() < end and start < m.end() for start, end in taken): continue
            taken.append(m.span()); hits.append((kind, m.group(0)))
    return hits


def shown_outputs(cell) -> list[tuple[str, str]]:
    "(stdout, stderr or result; its text) of each output as a reader sees it: consecutive chunks of a stream joined."
    shown = []
    for out in cell.get("outputs", []):
        kind = out.get("name", "stdout") if out.get("output_type") == "stream" else "result"
        text = out.get("text", "") if kind != "result" else out.get("data", {}).get("text/plain", "")
        text = text if isinstance(text, str) else "".join(text)
        if shown and kind != "result" and shown[-1][0] == kind: shown[-1] = (kind, shown[-1][1] + text)
        else: shown.append((kind, text))
    return shown


def noise(nb, name: str) -> list[str]:
    "One line per noisy output of a notebook: its name, the code cell, what kind of noise and the text that shows it."
    found = []
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for kind, text in shown_outputs(cell):
            if kind == "stderr": found.append(f"{name}: code cell {i}: stderr output: {text.strip()[:120]!r}"); continue
            if kind == "stdout" and re.search(r"\r(?!\n)", text):
                found.append(f"{name}: code cell {i}: progress drawn in chunks (a carriage return): {text.strip()[:80]!r}")
            found += [f"{name}: code cell {i}: {what}: {piece[:120]!r}" for what, piece in noisy_text(text)]
    return list(dict.fromkeys(found))   # a path printed twice in one cell is one problem


def masked(text: str) -> str:
    for pattern, replacement in MASKS: text = pattern.sub(replacement, text)
    return text


def _numbers_close(a: str, b: str) -> bool:
    x, y = float(a.replace(",", "")), float(b.replace(",", ""))
    return math.isclose(x, y, rel_tol=1e-3, abs_tol=1e-9)


def same_output(committed: str, fresh: str) -> bool:
    "Equal after masking, numbers within a relative 1e-3."
    a, b = masked(committed), masked(fresh)
    if NUMBER.sub("#", a) != NUMBER.sub("#", b): return False
    return all(_numbers_close(x, y) for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)))


def execute(path: Path):
    "The notebook executed in a fresh kernel, from the nbs/ folder (as nbdev_test runs it)."
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NBS)}}).execute()
    return nb


def numbered(names) -> list[Path]:
    paths = sorted(p for p in NBS.glob("*.ipynb") if p.name[0].isdigit())
    if names: paths = [p for p in paths if p.stem in names or p.name in names]
    return paths


def differences(committed, fresh, name: str) -> list[str]:
    "One line per code cell whose output changed (or that lost or gained its output)."
    problems = []
    old_cells = [c for c in committed.cells if c.cell_type == "code"]
    new_cells = [c for c in fresh.cells if c.cell_type == "code"]
    for i, (old, new) in enumerate(zip(old_cells, new_cells)):
        if "machine" in old.get("metadata", {}).get("tags", []): continue
        a, b = cell_text(old), cell_text(new)
        if not same_output(a, b):
            problems.append(f"{name}: code cell {i} ({old.source.splitlines()[0][:60] if old.source else ''!r}) "
                            f"shows\n    {masked(b)[:300]!r}\n  but the committed output is\n    {masked(a)[:300]!r}")
    return problems


def coalesced(nb):
    "`nb` with adjacent stream outputs of one name joined: the kernel flushes stdout on a timer, a print in pieces."
    for cell in nb.cells:
        if cell.cell_type != "code": continue
        outputs = []
        for out in cell.outputs:
            last = outputs[-1] if outputs else None
            if last is not None and out.output_type == last.output_type == "stream" and out.name == last.name:
                last.text += out.text
            else: outputs.append(out)
        cell.outputs = outputs
    return nb


def write(paths: list[Path]) -> int:
    "Execute and save each notebook; fail (after saving) when what it now shows is noisy, naming each noisy output."
    for path in paths:
        t0 = time.time()
        nbformat.write(coalesced(execute(path)), path)
        print(f"{path.name}: executed and written in {time.time() - t0:.0f} s")
    subprocess.run(["nbdev_clean"], cwd=ROOT, check=True)   # the committed form: outputs kept, metadata stripped
    return report_noise(paths)


def report_noise(paths: list[Path]) -> int:
    "The noise check alone, on the notebooks as committed: each noisy output on stderr, a count per notebook."
    total = 0
    for path in paths:
        found = noise(nbformat.read(path, as_version=4), path.name)
        for line in found: print(line, file=sys.stderr)
        print(f"{path.name}: {len(found)} noisy outputs")
        total += len(found)
    print(f"{len(paths)} notebooks read, {total} noisy outputs")
    return 1 if total else 0


def problems_of(committed, fresh, name: str) -> list[str]:
    """What CI fails a notebook for: outputs that changed, noise in the committed outputs, and noise the notebook
    produces now that its committed outputs lack (a new warning, say), so cleaning a file by hand cannot hide it."""
    committed_noise = noise(committed, name)
    fresh_noise = [f"{line} (re-executed)" for line in noise(fresh, name) if line not in committed_noise]
    return differences(committed, fresh, name) + committed_noise + fresh_noise


def check(paths: list[Path]) -> int:
    problems, missing = [], []
    for path in paths:
        committed = nbformat.read(path, as_version=4)
        if not any(c.get("outputs") for c in committed.cells if c.cell_type == "code"): missing.append(path.name)
        t0 = time.time()
        problems += problems_of(committed, execute(path), path.name)
        print(f"{path.name}: re-executed in {time.time() - t0:.0f} s")
    problems += [f"{m}: no committed outputs; run python tools/check_outputs.py --write {m}" for m in missing]
    for p in problems: print(p, file=sys.stderr)
    print(f"{len(paths)} notebooks re-executed, {len(problems)} outputs differ from the committed ones or are noisy")
    return 1 if problems else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", help="names or stems of numbered notebooks (default: all)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="execute and save the outputs instead of checking them")
    mode.add_argument("--noise-only", action="store_true",
                      help="only check the committed outputs for noise (stderr, absolute paths, warnings, pid, host, "
                           "timestamps); executes nothing")
    a = p.parse_args(argv)
    paths = numbered(a.notebooks)
    if not paths: print(f"no numbered notebook matches {a.notebooks}", file=sys.stderr); return 2
    if a.write: return write(paths)
    if a.noise_only: return report_noise(paths)
    return check(paths)


if __name__ == "__main__":
    sys.exit(main())
