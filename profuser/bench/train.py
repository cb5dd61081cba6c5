"""Benchmark area ``train``: the cost of ProFuser's fusion loss next to plain SFT.

One small randomly initialised Llama, one batch, three kinds of step (forward + loss + backward):

* ``sft``: token cross-entropy on the labels (what continual SFT pays);
* ``sparse``: :func:`profuser.train.losses.fusion_loss` with both modes and both sparse KLs at top-k;
* ``dense``: the same objective with a dense ``[B, L, V]`` teacher probability tensor built
  from the same top-k, as FuseLLM's collator does (the dense baseline that
  :mod:`profuser.train.losses` avoids by gathering at the top-k ids).

Half the batch plays the inference-mode sequences, half the training-mode ones; every variant
runs the same two forward passes (one per mode), so only the loss differs between them.

Time: interleaved repeats in this process; the ratio is the median over rounds of the ratio
within a round (on CPU: one thread, process CPU time, so other work on shared cores does not
enter). Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` in this process; on CPU each
variant runs in a fresh subprocess that reports its resident-set high-water mark during the
step above the resident state before it (model, grads, batch), with glibc told to ``mmap``
large blocks so freed tensors leave the resident set at once.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict

import torch

from profuser.bench.lora import bench_lora
from profuser.bench.memory import child_env, peak_kb, reset_peak, rss_kb
from profuser.bench.preference import bench_preference
from profuser.bench.registry import register
from profuser.bench.step import (
    VARIANTS,
    BenchSize,
    bench_batch,
    bench_model,
    fusion_step,
    interleaved_times,
    median_ratio,
)


def _time_steps(
    size: BenchSize, device: torch.device, repeats: int, variants: tuple[str, ...]
) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds per step, and median ratio to ``sft`` within a round
    (:func:`profuser.bench.step.interleaved_times`)."""
    model = bench_model(size, device)
    batch = bench_batch(size, device)

    def step(variant: str) -> Callable[[], None]:
        def run() -> None:
            model.zero_grad(set_to_none=False)
            fusion_step(variant, model, batch)

        return run

    times = interleaved_times({v: step(v) for v in variants}, device, repeats)
    medians = {v: statistics.median(ts) for v, ts in times.items()}
    return medians, {v: median_ratio(times, v, "sft") for v in variants}


# ---------------------------------------------------------------------------------------------
# Peak memory
# ---------------------------------------------------------------------------------------------


def _cpu_child(variant: str, size_json: str) -> None:
    """Entry point of the CPU memory subprocess: prints ``{"peak_bytes": ...}`` as JSON."""
    size = BenchSize(**json.loads(size_json))
    device = torch.device("cpu")
    model = bench_model(size, device)
    batch = bench_batch(size, device)
    # warm up on a short batch: grads, thread pools and lazy init stay out of the measurement
    short = {n: t[:, : min(8, size.seq)].contiguous() for n, t in batch.items()}
    fusion_step(variant, model, short)
    model.zero_grad(set_to_none=False)
    reset = reset_peak()
    before = rss_kb()
    high_before = peak_kb()
    fusion_step(variant, model, batch)
    peak = peak_kb()
    if not reset and peak <= high_before:
        raise RuntimeError("the step did not raise the high-water mark; cannot measure its peak")
    print(json.dumps({"peak_bytes": max(peak - before, 1) * 1024}))


def _cpu_peaks(size: BenchSize) -> dict[str, int]:
    """Step peak bytes of each variant, each in a fresh process (run side by side)."""
    env = child_env()
    code = "import sys; from profuser.bench.train import _cpu_child; _cpu_child(*sys.argv[1:])"
    procs = {
        v: subprocess.Popen(
            [sys.executable, "-c", code, v, json.dumps(asdict(size))],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in VARIANTS
    }
    out: dict[str, int] = {}
    for v, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"memory subprocess for {v!r} failed:\n{stderr[-2000:]}")
        out[v] = int(json.loads(stdout.strip().splitlines()[-1])["peak_bytes"])
    return out


def _cuda_peaks(size: BenchSize, device: torch.device) -> dict[str, int]:
    model = bench_model(size, device)
    batch = bench_batch(size, device)
    out: dict[str, int] = {}
    for variant in VARIANTS:
        fusion_step(variant, model, batch)  # grads exist from here on, like the CPU path
        model.zero_grad(set_to_none=False)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fusion_step(variant, model, batch)
        torch.cuda.synchronize(device)
        out[variant] = torch.cuda.max_memory_allocated(device) - before
    return out


@register("train")
def bench_train(
    batch: int = 4,
    seq: int = 512,
    vocab: int = 8000,
    hidden: int = 256,
    layers: int = 2,
    k: int = 10,
    repeats: int = 5,
    device: str | None = None,
    time_dense: bool = False,
    lora_rank: int = 16,
    preference: bool = True,
) -> dict[str, float | int | str]:
    """Time and peak memory of a fusion step (both sparse KLs) against SFT and a dense teacher,
    and of a LoRA fusion step against full fine-tuning.

    Returns ``train.step_ratio_vs_sft`` (goal <= 1.10), ``train.mem_ratio_vs_sft`` (goal
    <= 1.10), ``train.mem_ratio_dense_over_sparse``, ``train.lora_step_ratio_vs_full`` and
    ``train.lora_mem_ratio_vs_full`` (:mod:`profuser.bench.lora`; ``lora_rank`` 0 skips it),
    ``train.preference_step_ratio_vs_sft`` and ``train.preference_mem_ratio_vs_sft``
    (:mod:`profuser.bench.preference`; ``preference`` False skips them),
    and absolute figures for the record. Sizes default to a small Llama (about 30 s on 2 CPU
    cores); ``time_dense`` also times the dense-teacher step (memory is always measured for
    all three).
    """
    size = BenchSize(batch=batch, seq=seq, vocab=vocab, hidden=hidden, layers=layers, k=k)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda":
        peaks, how = _cuda_peaks(size, dev), "torch.cuda.max_memory_allocated"
    else:
        # memory first: its subprocesses would disturb the timings
        peaks, how = _cpu_peaks(size), "VmHWM of a fresh subprocess above its pre-step RSS"
    timed = ("sft", "sparse", "dense") if time_dense else ("sft", "sparse")
    secs, ratios = _time_steps(size, dev, repeats, timed)
    mb = 1024 * 1024
    out: dict[str, float | int | str] = {
        "train.step_ratio_vs_sft": ratios["sparse"],
        "train.mem_ratio_vs_sft": peaks["sparse"] / peaks["sft"],
        "train.mem_ratio_dense_over_sparse": peaks["dense"] / peaks["sparse"],
        "train.sft_step_ms": secs["sft"] * 1e3,
        "train.fusion_step_ms": secs["sparse"] * 1e3,
        "train.sft_peak_mb": peaks["sft"] / mb,
        "train.fusion_peak_mb": peaks["sparse"] / mb,
        "train.dense_peak_mb": peaks["dense"] / mb,
        "train.logits_mb": batch * seq * vocab * 4 / mb,
        "train.device": dev.type,
        "train.memory_method": how,
        "train.time_method": "process CPU time, 1 thread" if dev.type == "cpu" else "wall time",
        "train.setup": f"llama B={batch} L={seq} V={vocab} H={hidden} layers={layers} k={k} "
        f"repeats={repeats}",
    }
    if time_dense:
        out["train.step_ratio_dense_vs_sft"] = ratios["dense"]
        out["train.dense_step_ms"] = secs["dense"] * 1e3
    if lora_rank > 0:
        out.update(bench_lora(size, dev, repeats, lora_rank))
    if preference:
        out.update(bench_preference(size, dev, repeats))
    return out
