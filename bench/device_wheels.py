#!/usr/bin/env python3
"""Download, here, the wheels bench/device_check.py may need on a GPU machine that has PyTorch but no network.

    python bench/device_wheels.py [--dest .device_wheels] [--python 3.10 3.11 3.12] [--numpy]

Of gptnb's dependencies the check needs torch and numpy; gptnb's modules also import safetensors, tiktoken (with
regex) and tqdm at import time, which the check never calls (it stands in for a missing one and says so), so these
wheels only make the run use the real modules. The versions are this checkout's own (what its virtual environment
has), falling back to the newest. numpy comes only with --numpy: about 16 MiB per Python version, and a machine with
PyTorch nearly always has it. The folder is git-ignored (.device_wheels/); name it in the device run's `carry`, then

    python3 -m pip install --no-index --no-deps --find-links .device_wheels safetensors tqdm tiktoken regex

(`--no-deps`: tiktoken's own needs, requests and the rest, are not needed by this check; a package already installed
there is left as it is). Whole folder: about 7 MiB without numpy.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PURE = ("tqdm",)                                  # py3-none-any: one wheel for every Python
ABI3 = ("safetensors",)                           # cp3x-abi3: one wheel for every CPython 3.x
PER_VERSION = ("tiktoken", "regex")               # compiled per CPython version
# pip matches each platform tag exactly: every glibc level a wheel may name (the device runs a recent glibc)
PLATFORMS = ("manylinux2014_x86_64", *(f"manylinux_2_{n}_x86_64" for n in (17, 24, 26, 27, 28, 31, 34, 35)))
LIMIT_MIB = 50


def pinned(name: str) -> str:
    "name==the version this checkout's environment has, else the bare name (pip's newest)."
    try: return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError: return name


def download(name: str, dest: Path, python: str | None) -> bool:
    "This checkout's version of `name` for `python`, else the newest there is; False (and a warning) if none."
    for requirement in dict.fromkeys((pinned(name), name)):
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest",
               str(dest), "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)]]
        if python: cmd += ["--python-version", python]
        print(f"+ pip download {requirement} (Python {python})", flush=True)
        if subprocess.run(cmd + [requirement], capture_output=True, text=True).returncode == 0: return True
    print(f"warning: no wheel of {name} for Python {python}: the check stands in for it there", file=sys.stderr)
    return False


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dest", default=str(REPO / ".device_wheels"))
    p.add_argument("--python", nargs="+", default=["3.10", "3.11", "3.12"], help="target CPython versions")
    p.add_argument("--numpy", action="store_true", help="also numpy, for each --python version (~16 MiB each)")
    a = p.parse_args(argv)
    dest = Path(a.dest); dest.mkdir(parents=True, exist_ok=True)
    for name in PURE + ABI3: download(name, dest, a.python[-1])
    for name in PER_VERSION + (("numpy",) if a.numpy else ()):
        for py in a.python: download(name, dest, py)
    wheels = sorted(dest.glob("*.whl"))
    total = sum(w.stat().st_size for w in wheels) / 2**20
    for w in wheels: print(f"{w.stat().st_size / 2**20:7.2f} MiB  {w.name}")
    print(f"{total:7.2f} MiB in {len(wheels)} wheels in {dest}")
    if total > LIMIT_MIB:
        print(f"error: over {LIMIT_MIB} MiB: the device run carries the working tree and these within 64 MiB",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
