"""Peak memory of `gptnb.loader.TokenBatches` on a ≥1 GB token file against a 10 MB one.

Writes two uint16 token files (safetensors, `tokens`) to a temporary folder, then, in a fresh subprocess per case,
reads the same number of microbatches (B=12, T=1024 by default) spread over the whole file and reports the process's
peak resident memory. If memory is proportional to the batch, the two file sizes give the same figures.

Three ways of reading are measured:
  loader          TokenBatches, sequential order (the post's), microbatches at steps spread across the file
  loader+seed     TokenBatches with data_seed=0: every sequence from a random place in the file
  memmap-slices   for comparison, the same sequences sliced from `load_tokens`'s numpy memmap

Peak RSS is VmHWM from /proc/self/status, reset (clear_refs 5) after the imports so that it covers only the
loader's construction and the loop; ru_maxrss (whole process life, imports included) is shown as well. The parent
imports only the standard library (and writes the files in a subprocess), because ru_maxrss carries over fork+exec.

    python bench/loader_memory.py [--big-gb 1.0] [--batches 300] [--batch-size 12] [--context 1024]
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _status_kb(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"): return int(line.split()[1])
    raise KeyError(field)


def child(path: str, mode: str, batches: int, B: int, T: int) -> None:
    import numpy as np
    import torch
    from gptnb.datasets import load_tokens
    from gptnb.loader import TokenBatches
    try:
        with open("/proc/self/clear_refs", "w") as f: f.write("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    base_kb = _status_kb("VmRSS")
    t0 = time.perf_counter()
    tb = TokenBatches(path, B, T, data_seed=None if mode == "loader" else 0)
    steps = np.linspace(0, tb.steps_available - 1, batches).astype(np.int64)
    checksum = 0
    if mode == "memmap-slices":
        mm = load_tokens(path)
        for s in steps:
            rows = [np.array(mm[j * T:j * T + T + 1]) for j in tb.sequence_indices(int(s))]
            x = torch.from_numpy(np.stack(rows).astype(np.int64))
            checksum += int(x[:, -1].sum())
    else:
        for s in steps:
            x, y = tb.get(int(s))
            checksum += int(x[:, -1].sum())
    elapsed = time.perf_counter() - t0
    print(json.dumps({"base_mb": base_kb / 1024, "peak_mb": _status_kb("VmHWM") / 1024, "hwm_reset": reset,
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "seconds": elapsed, "checksum": checksum}))


def write_tokens(path: Path, n_tokens: int) -> None:
    import numpy as np
    from gptnb.datasets import _write_token_file
    chunk = 1 << 24
    def chunks():
        for lo in range(0, n_tokens, chunk):
            yield (np.arange(lo, min(lo + chunk, n_tokens), dtype=np.int64) % 50257).astype(np.uint16)
    _write_token_file(path, n_tokens, np.uint16, chunks())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big-gb", type=float, default=1.0)
    ap.add_argument("--small-mb", type=float, default=10.0)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=12)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--child", nargs=2, metavar=("PATH", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--write", nargs=2, metavar=("PATH", "N_TOKENS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.batches, args.batch_size, args.context)
    if args.write:
        return write_tokens(Path(args.write[0]), int(args.write[1]))

    tmp = Path(tempfile.mkdtemp(prefix="gptnb-loader-bench-"))
    try:
        files = {}
        for label, n_bytes in (("10 MB", args.small_mb * 1e6), ("1 GB", args.big_gb * 1e9)):
            path = tmp / f"{label.replace(' ', '')}.safetensors"
            t0 = time.perf_counter()
            # in a subprocess too: ru_maxrss survives fork+exec, so this parent must stay small for the children
            subprocess.run([sys.executable, __file__, "--write", str(path), str(int(n_bytes) // 2 + 1)], check=True)
            files[label] = path
            print(f"wrote {path.stat().st_size / 1e6:,.1f} MB in {time.perf_counter() - t0:.1f}s", flush=True)
        modes = ("loader", "loader+seed", "memmap-slices")
        results = {}
        for mode in modes:
            for label, path in files.items():
                cmd = [sys.executable, __file__, "--child", str(path), mode, "--batches", str(args.batches),
                       "--batch-size", str(args.batch_size), "--context", str(args.context)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                results[mode, label] = json.loads(out.strip().splitlines()[-1])
        print(f"\n{args.batches} microbatches of B={args.batch_size}, T={args.context}, spread across each file; "
              f"peak RSS in MB (VmHWM since the imports; ru_maxrss includes them)\n")
        print(f"{'mode':<15}{'10 MB file':>12}{'1 GB file':>12}{'1GB - 10MB':>12}{'  ru_maxrss 10MB / 1GB':>24}"
              f"{'  loop s (1 GB)':>16}")
        for mode in modes:
            s, b = results[mode, "10 MB"], results[mode, "1 GB"]
            print(f"{mode:<15}{s['peak_mb']:>12.1f}{b['peak_mb']:>12.1f}{b['peak_mb'] - s['peak_mb']:>12.1f}"
                  f"{s['ru_maxrss_mb']:>13.1f} / {b['ru_maxrss_mb']:<9.1f}{b['seconds']:>10.2f}")
        base = results["loader", "1 GB"]["base_mb"]
        print(f"\n(RSS after importing torch and gptnb, before the loader: {base:.1f} MB; "
              f"VmHWM reset worked: {results['loader', '1 GB']['hwm_reset']})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
