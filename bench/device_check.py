#!/usr/bin/env python3
"""One-command GPU check of gptnb's gpt2-small: training throughput, MFU and memory, largest microbatch, determinism,
and the post's test protocol, written as JSON and a Markdown table.

    python3 bench/device_check.py [--out DIR]              # one CUDA GPU, about 5-7 minutes on an H200
    python3 bench/device_check.py --device cpu --tiny      # a tiny model on the CPU: the same sections in seconds

What it measures, each section under its own time limit inside one global budget (--budget-s, default 420 s); a
section that runs over is stopped and recorded as `timeout` with whatever it had measured, one that fails is
recorded as `failed` with its error, and the JSON and Markdown are rewritten after every section (and every
microbatch trial), so a kill still leaves the results so far:

- env: torch, CUDA, cuDNN, driver, device name, capability, SMs, memory; a timed 8192³ bf16 and fp16 matmul.
- train_eager_gptnb / train_eager_post / train_compiled_gptnb / train_compiled_post: optimizer steps of the
  163,009,536-parameter model (context 1,024, microbatch 12 = one of the post's 8 GPUs' share of its 96-sequence
  batch) in gptnb's arithmetic (bf16 autocast, SDPA) and in compat="post" (fp16 autocast + GradScaler, the post's
  masked-softmax attention), eager and torch.compile'd: tokens/s, MFU against the device's dense bf16/fp16 peak,
  peak memory (torch.cuda.max_memory_allocated). FLOPs per token: 6·N + 12·n_layers·context·emb_dim.
  The steps are gptnb.train.optimizer_step itself, on a gptnb.train.Trainer assembled as gptnb.train.setup
  assembles one (build_model, build_optimizer, the same matmul-precision and determinism settings, torch.compile
  of the model), with synthetic token batches already on the device in place of the token files' loader, and
  without the loop's logging, evaluations and checkpoints. Deterministic flags on: TrainConfig's default.
- eval_post_protocol: gptnb.evaluate.score with PROTOCOLS["post"] (6 × 1,024-token sequences per batch, fp16,
  batch mean) on synthetic validation tokens, timed per batch and extrapolated to the protocol's 3,200 batches.
- determinism: per arithmetic, two 20-step runs with the same seeds under gptnb.seeding's deterministic flags
  (sha256 of the weights must match), and a third without the flags: the flags' throughput cost.
- microbatch_gptnb / microbatch_post: gptnb.sweep.largest_fitting over gptnb.sweep.microbatch_fits (the search
  `gptnb find-microbatch` runs; out-of-memory caught), capped at --mb-limit (64).

Beside them: the post's own figure, 265,573 tokens/s on 8 × A100 40 GB = 33,197 tokens/s per GPU.
Synthetic tokens: torch.randint over the full GPT-2 vocabulary (50,257) from a fixed generator, made on the device.
The package need not be installed: the script puts the repository on sys.path. Of gptnb's dependencies it needs
torch and numpy; safetensors, tiktoken and tqdm are imported by gptnb's modules but never called here, so where one is
missing the script says which and carries on with a stand-in (bench/device_wheels.py prepares wheels of them).
"""
from __future__ import annotations

import time

_T0 = time.perf_counter()   # the budget counts from here, before torch's import

import argparse
import contextlib
import gc
import importlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import traceback
import types
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# what gptnb.seeding.set_deterministic sets (setdefault) before a run's first CUDA work; set before any here
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

SCHEMA = "gptnb.device_check/1"
POST_TOKENS_PER_S, POST_GPUS, POST_GPU = 265_573, 8, "A100 40 GB"
A100_PEAK = 312.0
FLOPS_FORMULA = "6·N + 12·n_layers·context·emb_dim"
VOCAB = 50_257           # the full GPT-2 vocabulary: gpt2-small's, and so the synthetic tokens'
GPT2_SMALL_PARAMETERS = 163_009_536
TINY_MODEL = {"vocab_size": 1024, "context_length": 64, "emb_dim": 64, "n_heads": 4, "n_layers": 2}
MODES = {  # name: (TrainConfig overrides, words)
    "gptnb": ({"compat": "gptnb", "precision": "bf16"}, "gptnb: bf16 autocast, SDPA"),
    "post": ({"compat": "post", "precision": "fp16"}, "post: fp16 autocast + GradScaler, masked softmax"),
}
EVAL_MODELS = {"post": "the post's model (masked softmax), fp16 autocast",
               "gptnb": "gptnb's model (SDPA), fp16 autocast"}
# dense (no 2:4 sparsity) bf16/fp16 tensor-core peaks, TFLOP/s; the first matching rule wins
PEAKS = [
    (("H200", "NVL"), 835.5, "NVIDIA H200 NVL datasheet: 1,671 TFLOP/s FP16/BF16 with sparsity, halved"),
    (("H200",), 989.4, "NVIDIA H200 (SXM) datasheet: 1,979 TFLOP/s FP16/BF16 with sparsity, halved"),
    (("H100", "PCIE"), 756.5, "NVIDIA H100 PCIe datasheet: 1,513 TFLOP/s FP16/BF16 with sparsity, halved"),
    (("H100", "NVL"), 835.5, "NVIDIA H100 NVL datasheet: 1,671 TFLOP/s FP16/BF16 with sparsity, halved"),
    (("H100",), 989.4, "NVIDIA H100 SXM datasheet: 1,979 TFLOP/s FP16/BF16 with sparsity, halved"),
    (("H800",), 989.4, "NVIDIA H800 SXM: the H100 SXM's 989.4 TFLOP/s dense FP16/BF16"),
    (("A100",), 312.0, "NVIDIA A100 datasheet: 312 TFLOP/s FP16/BF16 dense"),
    (("A800",), 312.0, "NVIDIA A800: the A100's 312 TFLOP/s FP16/BF16 dense"),
    (("L40S",), 362.05, "NVIDIA L40S datasheet: 733 TFLOP/s FP16/BF16 with sparsity, halved"),
]

SECTIONS = ["env", "train_eager_gptnb", "train_eager_post", "eval_post_protocol", "determinism",
            "train_compiled_gptnb", "microbatch_gptnb", "microbatch_post", "train_compiled_post"]
LIMITS = {  # section: (limit s, least budget left to start it, s)
    "env": (30, 0), "train_eager_gptnb": (60, 20), "train_eager_post": (60, 20), "eval_post_protocol": (40, 10),
    "determinism": (100, 40), "train_compiled_gptnb": (150, 90), "microbatch_gptnb": (60, 20),
    "microbatch_post": (60, 20), "train_compiled_post": (120, 90)}


def now_utc() -> str: return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def elapsed() -> float: return time.perf_counter() - _T0


# ---------------------------------------------------------------------------------------------------------------------
# imports: say exactly what is missing; stand in for what gptnb imports but this check never calls

STUBBABLE = {  # top-level module: (the modules gptnb imports from it at import time, who imports it)
    "safetensors": (("safetensors", "safetensors.torch"), "gptnb.model, gptnb.records, gptnb.checkpoints"),
    "tiktoken": (("tiktoken", "tiktoken.load"), "gptnb.tokenizer, gptnb.datasets"),
    "tiktoken_ext": (("tiktoken_ext", "tiktoken_ext.openai_public"), "gptnb.tokenizer (ships with tiktoken)"),
    "tqdm": (("tqdm", "tqdm.auto"), "gptnb.datasets, gptnb.train, gptnb.sweep"),
}
INSTALL_HINT = "python3 -m pip install --no-index --no-deps --find-links .device_wheels {}"


class _Missing:
    "Stands in for an attribute of a module that is not installed; calling it says so."
    def __init__(self, name): self._name = name
    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{self._name}: its package is not installed here (device_check stood in for it)")
    def __getattr__(self, attr):
        if attr.startswith("__"): raise AttributeError(attr)
        return _Missing(f"{self._name}.{attr}")


class _StubModule(types.ModuleType):
    def __getattr__(self, attr):
        if attr.startswith("__"): raise AttributeError(attr)
        return _Missing(f"{self.__name__}.{attr}")


class _Blocker:
    "--simulate-missing: make these top-level modules unimportable, as on a machine without them."
    def __init__(self, names): self.names = set(names)
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (simulated by --simulate-missing)", name=fullname)
        return None


def say(msg: str) -> None: print(f"[device_check {elapsed():6.1f}s] {msg}", flush=True)


def import_dependencies(imports: dict) -> types.SimpleNamespace | None:
    "Import torch, numpy and the gptnb modules the check uses; record (and print) each missing module exactly."
    g = types.SimpleNamespace()
    for hard in ("torch", "numpy"):
        try: setattr(g, hard, importlib.import_module(hard))
        except ImportError as e:
            missing = getattr(e, "name", None) or hard
            imports["missing"].append({"module": missing, "error": str(e), "needed_by": "gptnb (every module)",
                                       "stubbed": False})
            say(f"MISSING Python module {missing!r} ({e}): gptnb cannot be imported without it; install it: "
                + INSTALL_HINT.format(hard))
            return None
    for top, (modules, needed_by) in STUBBABLE.items():
        try:
            for m in modules: importlib.import_module(m)
        except ImportError as e:
            missing = getattr(e, "name", None) or top
            imports["missing"].append({"module": missing, "error": str(e), "needed_by": needed_by, "stubbed": top})
            say(f"MISSING Python module {missing!r} ({e}), imported by {needed_by}: this check never calls it, so "
                f"it runs with a stand-in for {top!r}; to install it: " + INSTALL_HINT.format(top))
            for m in modules: sys.modules.pop(m, None)
            for m in modules:
                stub = _StubModule(m); stub.__path__ = []
                sys.modules[m] = stub
                if "." in m: setattr(sys.modules[m.rsplit(".", 1)[0]], m.rsplit(".", 1)[1], stub)
            imports["stubbed"].append(top)
    for short, name in (("seeding", "gptnb.seeding"), ("model", "gptnb.model"), ("config", "gptnb.config"),
                        ("evaluate", "gptnb.evaluate"), ("train", "gptnb.train"), ("sweep", "gptnb.sweep")):
        try: setattr(g, short, importlib.import_module(name)); imports["gptnb"][name] = "ok"
        except Exception as e:
            setattr(g, short, None)
            imports["gptnb"][name] = f"{type(e).__name__}: {e}"
            hint = f"; install it: {INSTALL_HINT.format(e.name)}" if isinstance(e, ImportError) and e.name else ""
            say(f"cannot import {name}: {type(e).__name__}: {e}{hint}")
    return g


def need(g, *names):
    for n in names:
        if getattr(g, n, None) is None: raise RuntimeError(f"gptnb.{n} could not be imported (see imports)")


# ---------------------------------------------------------------------------------------------------------------------
# the report: JSON plus Markdown, rewritten after every section

def clean(v):
    "JSON-safe: non-finite floats become null, tuples lists, anything else odd its str."
    if isinstance(v, float): return v if math.isfinite(v) else None
    if isinstance(v, dict): return {str(k): clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)): return [clean(x) for x in v]
    if v is None or isinstance(v, (bool, int, str)): return v
    return str(v)


def fmt(v, spec=",.0f", none="—"):
    if v is None: return none
    try: return format(v, spec)
    except (TypeError, ValueError): return str(v)


def pct(v): return "—" if v is None else f"{100 * v:.1f}%"


class Report:
    def __init__(self, out: Path, data: dict):
        self.out, self.data = out, data
        out.mkdir(parents=True, exist_ok=True)
        self.json_path, self.md_path = out / "device_check.json", out / "device_check.md"

    def write(self):
        self.data["elapsed_s"] = round(elapsed(), 2)
        for path, text in ((self.json_path, json.dumps(clean(self.data), indent=2)), (self.md_path, markdown(self.data))):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text + "\n")
            tmp.replace(path)


class SectionTimeout(BaseException):
    "Raised by the section's alarm: a BaseException, so no `except Exception` on the way swallows it."


class _Alarm:
    def __init__(self): self.armed = self.fired = False
    def handler(self, signum, frame):
        if self.armed:
            self.armed, self.fired = False, True
            raise SectionTimeout()


def run_section(report: Report, name: str, fn, args, skip: str | None = None) -> None:
    limit_s, min_s = LIMITS[name]
    remaining = args.budget_s - elapsed()
    sec = report.data["sections"][name] = {"status": "running", "limit_s": None, "elapsed_s": None, "error": None,
                                           "note": None, "result": {}}
    if skip is None and remaining < max(min_s, 5):
        skip = f"budget: {remaining:.0f} s of the {args.budget_s:.0f} s budget left, the section needs ≥ {min_s} s"
    if skip is not None:
        sec.update(status="skipped", note=skip); report.write(); say(f"{name}: skipped ({skip})"); return
    limit = max(1.0, min(limit_s * args.limit_scale, remaining - 5))
    sec["limit_s"] = round(limit, 1)
    say(f"{name}: start (limit {limit:.0f} s)")
    report.write()
    alarm, started = _Alarm(), time.perf_counter()
    old = signal.signal(signal.SIGALRM, alarm.handler)
    alarm.armed = True
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        try:
            fn(sec["result"], sec)
            alarm.armed = False
            sec["status"] = "ok"
        except SectionTimeout:
            alarm.armed = False
            sec.update(status="timeout", error=f"over its {limit:.0f} s limit: stopped, the rest of it skipped")
        except Exception as e:
            alarm.armed = False
            if alarm.fired: sec.update(status="timeout", error=f"over its {limit:.0f} s limit ({type(e).__name__})")
            else:
                sec.update(status="failed", error=f"{type(e).__name__}: {e}".strip()[:2000],
                           traceback=traceback.format_exc()[-4000:])
        finally:
            alarm.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    except SectionTimeout:   # the alarm fired between the body's end and its disarming
        sec["status"] = sec["status"] if sec["status"] != "running" else "timeout"
    sec["elapsed_s"] = round(time.perf_counter() - started, 2)
    free(args, compiled="compiled" in name)
    report.write()
    say(f"{name}: {sec['status']} in {sec['elapsed_s']:.1f} s" + (f" — {sec['error']}" if sec["error"] else ""))


def free(args, compiled=False):
    import torch
    if compiled:
        with contextlib.suppress(Exception): torch._dynamo.reset()
    gc.collect()
    if args.device == "cuda":
        with contextlib.suppress(Exception): torch.cuda.synchronize(); torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------------------------------
# measurements

def sync(device):
    import torch
    if device.type == "cuda": torch.cuda.synchronize(device)


def detect_peak(device_name: str | None) -> dict:
    if device_name is None:
        return {"tflops": None, "source": None, "note": "CPU: no tensor-core peak; MFU is null"}
    upper = device_name.upper()
    for words, tflops, source in PEAKS:
        if all(w in upper for w in words):
            return {"tflops": tflops, "source": source, "matched": list(words), "note": "dense bf16/fp16 tensor peak"}
    return {"tflops": None, "source": None,
            "note": f"unknown device {device_name!r}: no peak in the table, MFU is null (tokens/s stand)"}


def model_facts(g, mcfg) -> dict:
    import torch
    with torch.device("meta"): n = g.model.GPTModel(mcfg).num_parameters()
    flops = 6 * n + 12 * mcfg.n_layers * mcfg.context_length * mcfg.emb_dim
    return {"config": mcfg.to_dict(), "parameters": n, "flops_per_token": flops, "flops_formula": FLOPS_FORMULA,
            "flops_note": "6·N: forward and backward matmuls of every parameter; 12·L·T·d: attention scores and "
                          "weighted values, forward and backward, without halving for the causal mask"}


def make_spec(g, args, mode: str, micro: int, deterministic: bool = True):
    over = {**MODES[mode][0], "micro_batch_size": micro, "batch_size": micro, "deterministic": deterministic}
    return g.config.RunSpec(preset="gpt2-small", device=args.device, max_steps=1000, train_overrides=over,
                            model_overrides=dict(TINY_MODEL) if args.tiny else {}).validate()


class SyntheticBatches:
    "Stands in for gptnb.loader.TokenBatches: `get(step, accum)` → (inputs, targets), made once on the device."
    def __init__(self, vocab, micro, ctx, device, count=4, seed=1234):
        import torch
        gen = torch.Generator(device=device).manual_seed(seed)
        seqs = [torch.randint(vocab, (micro, ctx + 1), generator=gen, device=device) for _ in range(count)]
        self.pool = [(s[:, :-1].contiguous(), s[:, 1:].contiguous()) for s in seqs]
    def get(self, step, accum): return self.pool[(step + accum) % len(self.pool)]


def make_trainer(g, args, mode, micro, deterministic=True, compiled=False):
    "A gptnb.train.Trainer as gptnb.train.setup builds one, on synthetic batches (setup itself needs a token dataset)."
    import torch
    need(g, "train", "config", "seeding")
    T = g.train
    spec = make_spec(g, args, mode, micro, deterministic)
    device = T.resolve_device(spec.device)
    if device.type == "cuda": torch.cuda.set_device(device)
    mcfg, tcfg = spec.configs()
    tcfg = replace(tcfg, precision=g.config.resolve_precision(tcfg.precision, device))
    post_amp = tcfg.compat == "post" and tcfg.precision == "fp16"
    torch.set_float32_matmul_precision("high" if post_amp else "highest")   # as setup
    if not deterministic:   # a fresh process's defaults (build_model only ever switches the flags on)
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, False
    model, initial_sha, loop_seed = T.build_model(spec, mcfg, tcfg, device)
    total = tcfg.total_steps(mcfg.context_length)
    opt, sched, scaler = T.build_optimizer(model, tcfg, total, device)
    data = T.RunData(path=Path("<synthetic>"), batches=SyntheticBatches(mcfg.vocab_size, micro, mcfg.context_length,
                                                                        device), val_tokens=None, n_val_windows=0)
    t = T.Trainer(spec=spec, env=T.DistEnv(), device=device, mcfg=mcfg, tcfg=tcfg, data=data, model=model, opt=opt,
                  sched=sched, scaler=scaler, total_steps=total, grad_accum=tcfg.grad_accum(1),
                  identity={"initial_sha256": initial_sha, "loop_seed": loop_seed, "world_size": 1})
    t.train_model = torch.compile(model) if compiled else model   # setup: torch.compile(model) if tcfg.compile
    return t


def describe_case(t, mode, compiled) -> dict:
    import torch
    return {"mode": mode, "arithmetic": MODES[mode][1], "compat": t.tcfg.compat, "precision": t.tcfg.precision,
            "attention": "SDPA (is_causal)" if t.tcfg.compat == "gptnb" else "masked softmax (the post's)",
            "compiled": compiled, "micro_batch_size": t.tcfg.micro_batch_size, "grad_accum": t.grad_accum,
            "context_length": t.mcfg.context_length, "deterministic": t.tcfg.deterministic,
            "float32_matmul_precision": torch.get_float32_matmul_precision()}


def throughput(res, report, tokens, seconds, precision):
    "tokens/s, MFU against the datasheet peak and against the measured matmul rate, the ratio to the post per GPU."
    tps = tokens / seconds
    facts, peak = report.data["model"], report.data["peak"]["tflops"]
    matmul = (report.data["environment"].get("matmul_tflops") or {}).get(precision)
    res["tokens_per_s"] = tps
    res["mfu"] = tps * facts["flops_per_token"] / (peak * 1e12) if peak else None
    res["mfu_vs_measured_matmul"] = tps * facts["flops_per_token"] / (matmul * 1e12) if matmul else None
    res["vs_post_per_gpu"] = tps / (POST_TOKENS_PER_S / POST_GPUS)


def train_section(g, args, report, mode, compiled):
    def run(res, sec):
        import torch
        t = make_trainer(g, args, mode, args.micro, compiled=compiled)
        res.update(describe_case(t, mode, compiled))
        res["code_path"] = ("gptnb.train.optimizer_step on a Trainer built as gptnb.train.setup builds one "
                            "(synthetic device batches; no logging, evaluation or checkpoints)")
        if compiled and t.tcfg.compat == "post":
            sec["note"] = ("reference only: gptnb's TrainConfig refuses compile with compat='post' (the post ran "
                           "eager); here the post-arithmetic model is wrapped in torch.compile directly")
        cuda = t.device.type == "cuda"
        if cuda: torch.cuda.reset_peak_memory_stats(t.device)
        warm, timed = args.warmup_compiled if compiled else args.warmup, args.steps
        sync(t.device); start = time.perf_counter()
        step = 0
        for i in range(warm):
            g.train.optimizer_step(t, step); step += 1
            if i == 0: sync(t.device); res["first_step_s"] = time.perf_counter() - start
        sync(t.device); res["warmup_steps"], res["warmup_s"] = warm, time.perf_counter() - start
        report.write()
        skipped_before = t.progress.skipped_steps
        start = time.perf_counter()
        for _ in range(timed): row = g.train.optimizer_step(t, step); step += 1
        sync(t.device); seconds = time.perf_counter() - start
        res.update(timed_steps=timed, timed_s=seconds, step_s=seconds / timed,
                   tokens_per_step=t.tcfg.micro_batch_size * t.mcfg.context_length,
                   skipped_steps_timed=t.progress.skipped_steps - skipped_before, last_loss=row["loss"],
                   loss_scale=row.get("loss_scale"), grad_norm=row["grad_norm"])
        throughput(res, report, timed * res["tokens_per_step"], seconds, t.tcfg.precision)
        if cuda:
            res["peak_memory_bytes"] = torch.cuda.max_memory_allocated(t.device)
            res["peak_memory_gib"] = res["peak_memory_bytes"] / 2**30
        else: res["peak_memory_bytes"] = res["peak_memory_gib"] = None
        if res.get("skipped_steps_timed"):
            sec["note"] = (sec["note"] or "") + (f" {res['skipped_steps_timed']} timed step(s) skipped by the "
                                                 "GradScaler (overflow): their forward/backward still ran").strip()
    return run


def eval_section(g, args, report):
    def run(res, sec):
        import torch
        need(g, "evaluate", "train")
        proto = g.evaluate.PROTOCOLS["post"]
        n = args.eval_batches
        res.update(protocol=proto.describe(), protocol_batches=proto.batches, timed_batches=n,
                   code_path="gptnb.evaluate.score (_window_losses: batches, fp16 autocast, per-batch .item())",
                   note="synthetic tokens from offset 0 (the protocol reads from token 50,000,000; the offset does "
                        "not change the work); after 2 warm-up batches")
        res["runs"] = []
        for mode in ("post", "gptnb"):
            spec = make_spec(g, args, mode, args.micro)
            device = g.train.resolve_device(spec.device)
            mcfg, tcfg = spec.configs()
            model = g.train.build_model(spec, mcfg, tcfg, device)[0]
            p = proto.replace(start_token=0, batches=n, context_length=min(proto.context_length, mcfg.context_length),
                              **({"batch_size": 2} if args.tiny else {}))
            gen = torch.Generator(device=device).manual_seed(4321)
            tokens = torch.randint(mcfg.vocab_size, (p.tokens_needed(p.context_length),), generator=gen,
                                   device=device).to(torch.int32).cpu().numpy().astype(g.numpy.uint16)
            g.evaluate.score(model, tokens, p.replace(batches=2), device)   # warm-up
            sync(device); start = time.perf_counter()
            s = g.evaluate.score(model, tokens, p, device)
            sync(device); seconds = time.perf_counter() - start
            run = {"mode": mode, "model_arithmetic": EVAL_MODELS[mode], "batch_size": p.batch_size, "context_length": p.context_length,
                   "precision": p.precision, "batches": n, "seconds": seconds, "per_batch_s": seconds / n,
                   "extrapolated_s": seconds / n * proto.batches, "tokens_per_s": n * p.batch_size * p.context_length / seconds,
                   "loss": s.loss}
            res["runs"].append(run)
            report.write()
            del model, s
            free(args)
    return run


def determinism_section(g, args, report):
    def run(res, sec):
        need(g, "seeding")
        n, warm = args.det_steps, args.det_warmup
        res.update(steps=n, timed_from_step=warm, micro_batch_size=args.micro,
                   flags_on=("gptnb.seeding.set_deterministic(True) via build_model: cudnn.deterministic, "
                             "no cudnn.benchmark, torch.use_deterministic_algorithms(True), CUBLAS_WORKSPACE_CONFIG"),
                   flags_off="torch's defaults (use_deterministic_algorithms False, cudnn.benchmark False); "
                             f"CUBLAS_WORKSPACE_CONFIG={os.environ.get('CUBLAS_WORKSPACE_CONFIG')} stays (process-wide)")
        res["modes"] = {}
        for mode in MODES:
            m = res["modes"][mode] = {"arithmetic": MODES[mode][1]}
            for label, det in (("run_a", True), ("run_b", True), ("no_flags", False)):
                t = make_trainer(g, args, mode, args.micro, deterministic=det)
                if label == "run_a": m["flags"] = g.seeding.deterministic_flags()
                start = None
                for step in range(n):
                    if step == warm: sync(t.device); start = time.perf_counter()
                    row = g.train.optimizer_step(t, step)
                sync(t.device)
                tps = (n - warm) * t.tcfg.micro_batch_size * t.mcfg.context_length / (time.perf_counter() - start)
                m[label] = {"sha256": g.seeding.weights_fingerprint(t.model.state_dict()),
                            "initial_sha256": t.identity["initial_sha256"], "last_loss": row["loss"],
                            "tokens_per_s": tps, "skipped_steps": t.progress.skipped_steps}
                del t
                free(args)
                report.write()
            m["bit_identical"] = m["run_a"]["sha256"] == m["run_b"]["sha256"]
            with_flags = (m["run_a"]["tokens_per_s"] + m["run_b"]["tokens_per_s"]) / 2
            m["tokens_per_s_with_flags"], m["tokens_per_s_without_flags"] = with_flags, m["no_flags"]["tokens_per_s"]
            m["flags_cost"] = 1 - with_flags / m["no_flags"]["tokens_per_s"]
            m["no_flags_same_weights"] = m["no_flags"]["sha256"] == m["run_a"]["sha256"]
        if not all(m["bit_identical"] for m in res["modes"].values()):
            sec["note"] = "NOT bit-identical: " + ", ".join(k for k, m in res["modes"].items() if not m["bit_identical"])
    return run


def microbatch_section(g, args, report, mode):
    def run(res, sec):
        import torch
        need(g, "sweep", "config")
        spec = make_spec(g, args, mode, 1)
        trials = res["trials"] = []
        res.update(arithmetic=MODES[mode][1], limit=args.mb_limit,
                   code_path="gptnb.sweep.largest_fitting(lambda size: gptnb.sweep.microbatch_fits(spec, size)): "
                             "the search of `gptnb find-microbatch`, 2 training steps per trial")
        cuda = args.device == "cuda"

        def fits(size):
            if cuda: torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            ok = g.sweep.microbatch_fits(spec, size)
            trials.append({"size": size, "fits": ok, "seconds": round(time.perf_counter() - start, 2),
                           "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None})
            res["largest_fitting_so_far"] = max([t["size"] for t in trials if t["fits"]], default=None)
            report.write()
            return ok
        try:
            best, _ = g.sweep.largest_fitting(fits, limit=args.mb_limit)
            res["largest"], res["reached_limit"] = best, best == args.mb_limit
            if not cuda: sec["note"] = "CPU: memory never runs out at this size, so the search stops at its cap"
        finally:
            if "largest" not in res: res["largest"] = None   # stopped: largest_fitting_so_far is a lower bound
    return run


def env_section(g, args, report):
    def run(res, sec):
        import torch
        env = report.data["environment"]
        env.update(python=sys.version.split()[0], platform=platform.platform(), torch=torch.__version__,
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
                   else None, numpy=g.numpy.__version__, cpu_count=os.cpu_count(),
                   cublas_workspace_config=os.environ.get("CUBLAS_WORKSPACE_CONFIG"), git_commit=git_commit())
        if args.device == "cuda":
            props = torch.cuda.get_device_properties(0)
            env.update(device_name=torch.cuda.get_device_name(0), capability=list(torch.cuda.get_device_capability(0)),
                       sm_count=props.multi_processor_count, total_memory_gib=props.total_memory / 2**30,
                       l2_cache_bytes=getattr(props, "L2_cache_size", None), device_count=torch.cuda.device_count(),
                       driver=nvidia_smi("driver_version"), cuda_driver_api=driver_api())
        else: env.update(device_name=None, capability=None, driver=None)
        report.data["peak"] = detect_peak(env["device_name"])
        report.write()
        if args.device == "cuda" and not args.tiny:
            env["matmul_tflops"], env["matmul_note"] = {}, "8192³ matmul, mean of 10 after 3 warm-ups, random normal data"
            for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
                a, b = (torch.randn(8192, 8192, device="cuda", dtype=dtype) for _ in range(2))
                for _ in range(3): a @ b
                torch.cuda.synchronize(); start = time.perf_counter()
                for _ in range(10): a @ b
                torch.cuda.synchronize()
                env["matmul_tflops"][name] = 10 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12
                del a, b
        else: env["matmul_tflops"] = None
    return run


def git_commit():
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except Exception: return None


def nvidia_smi(field):
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except Exception: return None


def driver_api():
    import torch
    try: return torch._C._cuda_getDriverVersion()
    except Exception: return None


# ---------------------------------------------------------------------------------------------------------------------
# Markdown

def markdown(d: dict) -> str:
    env, peak, model, sections = d.get("environment", {}), d.get("peak") or {}, d.get("model") or {}, d["sections"]
    L = [f"# gptnb device check: {env.get('device_name') or d.get('device', '?')}", ""]
    L.append(f"{d.get('started_utc')}; torch {env.get('torch')}, CUDA {env.get('cuda')}, driver {env.get('driver')}, "
             f"capability {env.get('capability')}; {d.get('elapsed_s', 0):.0f} s of a {d.get('budget_s', 0):.0f} s "
             f"budget{' (tiny model)' if d.get('tiny') else ''}; status: {d.get('status')}.")
    if model:
        cfg = model.get("config", {})
        L.append(f"Model: gpt2-small{' (tiny shape)' if d.get('tiny') else ''}, {model.get('parameters', 0):,} "
                 f"parameters (untied), context {cfg.get('context_length', 0):,}; FLOPs per token = {FLOPS_FORMULA} "
                 f"= {model.get('flops_per_token', 0):,}.")
    mm = env.get("matmul_tflops") or {}
    L.append(f"MFU peak: {fmt(peak.get('tflops'), ',.1f')} TFLOP/s ({peak.get('source') or peak.get('note')}); "
             f"measured 8192³ matmul: bf16 {fmt(mm.get('bf16'), ',.0f')}, fp16 {fmt(mm.get('fp16'), ',.0f')} TFLOP/s.")
    if d.get("imports", {}).get("missing"):
        L.append("Missing modules: " + ", ".join(f"{m['module']} (stand-in: {m['stubbed'] or 'none'})"
                                                 for m in d["imports"]["missing"]) + ".")
    L += ["", "## Training throughput (one GPU, synthetic tokens)", "",
          "| run | arithmetic | compiled | microbatch | tokens/s | MFU | MFU vs matmul | peak memory GiB | × post per GPU | notes |",
          "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for name in ("train_eager_gptnb", "train_eager_post", "train_compiled_gptnb", "train_compiled_post"):
        s = sections.get(name)
        if s is None: continue
        r = s.get("result", {})
        mode = "gptnb" if name.endswith("gptnb") else "post"
        note = section_note(s)
        if "first_step_s" in r and r.get("compiled"):
            note = "; ".join(x for x in (f"first step (compile) {r['first_step_s']:.0f} s", note) if x)
        L.append(f"| {name} | {MODES[mode][1]} | {'yes' if 'compiled' in name else 'no'} | {fmt(r.get('micro_batch_size'), 'd')} "
                 f"| {fmt(r.get('tokens_per_s'))} | {pct(r.get('mfu'))} | {pct(r.get('mfu_vs_measured_matmul'))} "
                 f"| {fmt(r.get('peak_memory_gib'), '.1f')} | {fmt(r.get('vs_post_per_gpu'), '.2f')} | {note} |")
    ref = d.get("post_reference", {})
    L.append(f"| the post, per GPU | post: fp16 autocast + GradScaler | — | 12 | {fmt(ref.get('tokens_per_s_per_gpu'))} "
             f"| {pct(ref.get('mfu_vs_a100_peak'))} (A100 312) | — | — | 1.00 | {ref.get('what', '')} |")
    s = sections.get("microbatch_gptnb") or sections.get("microbatch_post")
    if s is not None:
        L += ["", "## Largest microbatch (gptnb find-microbatch's search)", "",
              "| arithmetic | largest | cap | trials (size: fits, peak GiB) | notes |", "|---|---:|---:|---|---|"]
        for name in ("microbatch_gptnb", "microbatch_post"):
            s = sections.get(name)
            if s is None: continue
            r = s.get("result", {})
            largest = r.get("largest") if r.get("largest") is not None else (
                f"≥ {r['largest_fitting_so_far']}" if r.get("largest_fitting_so_far") else None)
            tr = ", ".join(f"{t['size']}: {'yes' if t['fits'] else 'OOM'}"
                           + (f" {t['peak_memory_gib']:.0f}" if t.get("peak_memory_gib") is not None else "")
                           for t in r.get("trials", []))
            L.append(f"| {MODES[name.rsplit('_', 1)[1]][1]} | {fmt(largest, 'd') if isinstance(largest, int) else (largest or '—')} "
                     f"| {r.get('limit', '—')} | {tr or '—'} | {section_note(s)} |")
    s = sections.get("determinism")
    if s is not None:
        r = s.get("result", {})
        L += ["", f"## Determinism ({r.get('steps', '?')} steps × 2, same seeds, gptnb.seeding's flags)", "",
              "| arithmetic | bit-identical | sha256 (run a) | tokens/s with flags | without | flags cost | notes |",
              "|---|---|---|---:|---:|---:|---|"]
        for mode, m in (r.get("modes") or {}).items():
            L.append(f"| {m.get('arithmetic')} | {fmt(m.get('bit_identical'), '')} | {(m.get('run_a') or {}).get('sha256', '—')[:16]} "
                     f"| {fmt(m.get('tokens_per_s_with_flags'))} | {fmt(m.get('tokens_per_s_without_flags'))} "
                     f"| {pct(m.get('flags_cost'))} | |")
        if not r.get("modes"): L.append(f"| — | — | — | — | — | — | {section_note(s)} |")
        elif section_note(s): L.append(f"\n{section_note(s)}")
    s = sections.get("eval_post_protocol")
    if s is not None:
        r = s.get("result", {})
        L += ["", "## The post's test protocol (6 × 1,024 sequences per batch, fp16, synthetic tokens)", "",
              f"| model | sequences × tokens | batches timed | s per batch | × {fmt(r.get('protocol_batches'), ',d')} batches (s) | tokens/s | loss |",
              "|---|---|---:|---:|---:|---:|---:|"]
        for run in r.get("runs", []):
            L.append(f"| {run['model_arithmetic']} | {run['batch_size']} × {run['context_length']:,} | {run['batches']} "
                     f"| {run['per_batch_s']:.4f} | {run['extrapolated_s']:.1f} | {fmt(run['tokens_per_s'])} | {run['loss']:.3f} |")
        if not r.get("runs"): L.append(f"| — | — | — | — | — | — | {section_note(s)} |")
        elif section_note(s): L.append(f"\n{section_note(s)}")
    L += ["", "## Sections", "", "| section | status | seconds | limit s | note |", "|---|---|---:|---:|---|"]
    for name, s in sections.items():
        L.append(f"| {name} | {s['status']} | {fmt(s.get('elapsed_s'), '.1f')} | {fmt(s.get('limit_s'), '.0f')} | {section_note(s)} |")
    return "\n".join(L)


def section_note(s: dict) -> str:
    text = {"failed": f"FAILED: {s.get('error')}", "timeout": f"TIMEOUT: {s.get('error')}",
            "skipped": f"skipped: {s.get('note')}", "running": "RUNNING (killed?)"}.get(s["status"], s.get("note") or "")
    if s["status"] in ("failed", "timeout") and s.get("note"): text += f" ({s['note']})"
    return text.replace("|", "\\|").replace("\n", " ")[:400]


# ---------------------------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="folder for device_check.json and .md (default: $OUT, else bench/results)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--tiny", action="store_true", help="a tiny model and few steps (the CPU smoke run)")
    p.add_argument("--budget-s", type=float, default=420.0, help="the whole run's budget, from the script's start")
    p.add_argument("--sections", default="all", help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--compile", choices=("auto", "yes", "no"), default="auto",
                   help="auto: compile on CUDA, not on the CPU (a C++ build on 2 cores takes minutes)")
    p.add_argument("--mb-limit", type=int, default=None, help="cap of the microbatch search (64; tiny: 4)")
    p.add_argument("--limit-scale", type=float, default=None,
                   help="multiply every section's time limit (default 1 on CUDA, 2 on the CPU; tests use a tiny one)")
    p.add_argument("--simulate-missing", default="", help="comma-separated modules to treat as not installed (tests)")
    a = p.parse_args(argv)
    full = not a.tiny
    a.micro = 12 if full else 2
    a.warmup, a.warmup_compiled, a.steps = (3, 3, 20) if full else (1, 1, 3)
    a.det_steps, a.det_warmup = (20, 5) if full else (6, 2)
    a.eval_batches = 50 if full else 2
    a.mb_limit = a.mb_limit or (64 if full else 4)
    if a.limit_scale is None: a.limit_scale = 1.0 if a.device == "cuda" else 2.0   # the CPU's matter only for a kill
    a.out = Path(a.out or os.environ.get("OUT") or REPO / "bench" / "results")
    wanted = SECTIONS if a.sections == "all" else [s.strip() for s in a.sections.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown: p.error(f"unknown section(s) {unknown}; valid: {SECTIONS}")
    a.wanted = wanted
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    data = {"schema": SCHEMA, "command": [sys.executable, *sys.argv], "started_utc": now_utc(), "finished_utc": None,
            "status": "running", "device": args.device, "tiny": args.tiny, "budget_s": args.budget_s,
            "environment": {}, "peak": None, "model": None,
            "post_reference": {"tokens_per_s": POST_TOKENS_PER_S, "gpus": POST_GPUS, "gpu": POST_GPU,
                               "tokens_per_s_per_gpu": POST_TOKENS_PER_S / POST_GPUS,
                               "what": f"{POST_TOKENS_PER_S:,} tokens/s on {POST_GPUS} × {POST_GPU} (DDP, microbatch 12, "
                                       "fp16 AMP), divided by 8"},
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "imports": {"missing": [], "stubbed": [], "gptnb": {}, "simulated_missing": []}, "sections": {}}
    report = Report(args.out, data)
    say(f"writing {report.json_path} and {report.md_path}")
    if args.simulate_missing:
        names = [n.strip() for n in args.simulate_missing.split(",") if n.strip()]
        data["imports"]["simulated_missing"] = names
        for n in list(sys.modules):
            if n.split(".")[0] in names: del sys.modules[n]
        sys.meta_path.insert(0, _Blocker(names))
    g = import_dependencies(data["imports"])
    if g is None:
        data.update(status="fatal", error="a required module is missing: " + ", ".join(
            m["module"] for m in data["imports"]["missing"] if not m["stubbed"]), finished_utc=now_utc())
        report.write()
        return 2
    torch = g.torch
    if args.device == "cuda" and not torch.cuda.is_available():
        data.update(status="fatal", error="--device cuda but torch.cuda.is_available() is False", finished_utc=now_utc())
        report.write(); say(data["error"])
        return 2
    if args.device == "cpu": torch.set_num_threads(min(2, os.cpu_count() or 1))
    try:
        need(g, "config", "model")
        mcfg, _ = make_spec(g, args, "gptnb", args.micro).configs()
        data["model"] = {"preset": "gpt2-small" + (" in a tiny shape (--tiny)" if args.tiny else ""),
                         **model_facts(g, mcfg)}
        full = model_facts(g, g.model.GPTConfig())   # the post's model, whatever the run's shape
        data["post_reference"]["flops_per_token"] = full["flops_per_token"]
        if not args.tiny: data["model"]["parameters_as_the_post"] = full["parameters"] == GPT2_SMALL_PARAMETERS
    except Exception as e:
        data["model_error"] = f"{type(e).__name__}: {e}"
        say(f"model facts: {data['model_error']}")
    data["peak"] = detect_peak(None if args.device == "cpu" else torch.cuda.get_device_name(0))
    ref = data["post_reference"]
    if ref.get("flops_per_token"):
        ref["mfu_vs_a100_peak"] = ref["tokens_per_s_per_gpu"] * ref["flops_per_token"] / (A100_PEAK * 1e12)
    report.write()

    compile_skip = None
    if args.compile == "no" or (args.compile == "auto" and args.device == "cpu"):
        compile_skip = ("CPU run: torch.compile needs a C++ toolchain and minutes on 2 cores (--compile yes forces it)"
                        if args.compile == "auto" else "--compile no")
    plan = {"env": env_section(g, args, report),
            "train_eager_gptnb": train_section(g, args, report, "gptnb", False),
            "train_eager_post": train_section(g, args, report, "post", False),
            "eval_post_protocol": eval_section(g, args, report),
            "determinism": determinism_section(g, args, report),
            "train_compiled_gptnb": train_section(g, args, report, "gptnb", True),
            "microbatch_gptnb": microbatch_section(g, args, report, "gptnb"),
            "microbatch_post": microbatch_section(g, args, report, "post"),
            "train_compiled_post": train_section(g, args, report, "post", True)}
    for name in SECTIONS:
        if name not in args.wanted: continue
        run_section(report, name, plan[name], args, skip=compile_skip if "compiled" in name else None)
    statuses = [s["status"] for s in data["sections"].values()]
    data["status"] = "complete" if all(s in ("ok", "skipped") for s in statuses) else "complete with failures"
    data["finished_utc"] = now_utc()
    report.write()
    print(report.md_path.read_text(), flush=True)
    return 0 if data["status"] == "complete" else 1


if __name__ == "__main__":
    sys.exit(main())
