"""LoRA against full fine-tuning, for ``profuser bench train``: the same fusion step, the same
batch, the same randomly initialised Llama, with all weights or only rank-r adapters training.

A step here is what the fusion loop pays per optimizer step: both modes' forwards, the sparse
fusion loss, backward, and Adam's update. Time: interleaved rounds, the ratio taken within a
round (on CPU one thread, process CPU time; see :mod:`profuser.bench.train`). Memory: the
whole training footprint, since that is where adapters save (gradients and Adam's two moments
of every trainable weight): on CPU the resident high-water mark of a fresh subprocess above its
footprint before the model was built, over two steps (the second with Adam's state in place);
on CUDA ``torch.cuda.max_memory_allocated`` over the same.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict

import torch

from profuser.bench.memory import child_peaks, peak_kb, reset_peak, rss_kb
from profuser.bench.step import (
    BenchSize,
    bench_batch,
    bench_model,
    fusion_step,
    interleaved_times,
    median_ratio,
)
from profuser.config import LoraOptions
from profuser.train.lora import wrap_lora

MODES = ("full", "lora")


def _trainee(size: BenchSize, device: torch.device, mode: str, rank: int):
    """The benchmark model and its Adam optimizer; ``lora`` wraps the same initial weights."""
    model = bench_model(size, torch.device("cpu"))
    if mode == "lora":
        model = wrap_lora(model, LoraOptions(rank=rank, alpha=2 * rank, dropout=0.0), seed=0)
    model = model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.Adam(params, lr=1e-4)


def _train_step(model, opt, batch) -> None:
    fusion_step("sparse", model, batch)
    opt.step()
    opt.zero_grad(set_to_none=True)


def time_lora(size: BenchSize, device: torch.device, repeats: int, rank: int) -> tuple[dict, float]:
    """Median seconds per step of each mode, and the median within-round ratio lora / full."""
    batch = bench_batch(size, device)
    trainees = {m: _trainee(size, device, m, rank) for m in MODES}
    times = interleaved_times(
        {m: (lambda m=m: _train_step(*trainees[m], batch)) for m in MODES}, device, repeats
    )
    medians = {m: statistics.median(ts) for m, ts in times.items()}
    return medians, median_ratio(times, "lora", "full")


def _cpu_child(mode: str, size_json: str, rank: str) -> None:
    """Subprocess entry: prints ``{"peak_bytes": ...}``, the training footprint of ``mode``."""
    size = BenchSize(**json.loads(size_json))
    cpu = torch.device("cpu")
    batch = bench_batch(size, cpu)
    reset_peak()
    before = rss_kb()
    model, opt = _trainee(size, cpu, mode, int(rank))
    for _ in range(2):
        _train_step(model, opt, batch)
    print(json.dumps({"peak_bytes": max(peak_kb() - before, 1) * 1024}))


def cpu_peaks(size: BenchSize, rank: int) -> dict[str, int]:
    """Training footprint of each mode, each in a fresh process (run one after the other)."""
    args = [json.dumps(asdict(size)), str(rank)]
    return child_peaks("profuser.bench.lora", {m: [m, *args] for m in MODES})


def cuda_peaks(size: BenchSize, device: torch.device, rank: int) -> dict[str, int]:
    batch = bench_batch(size, device)
    out: dict[str, int] = {}
    for mode in MODES:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        model, opt = _trainee(size, device, mode, rank)
        for _ in range(2):
            _train_step(model, opt, batch)
        torch.cuda.synchronize(device)
        out[mode] = torch.cuda.max_memory_allocated(device) - before
        del model, opt
    return out


def bench_lora(
    size: BenchSize, device: torch.device, repeats: int, rank: int
) -> dict[str, float | str]:
    """``train.lora_*`` figures: step time and training footprint of LoRA against full."""
    peaks = cpu_peaks(size, rank) if device.type == "cpu" else cuda_peaks(size, device, rank)
    secs, ratio = time_lora(size, device, repeats, rank)
    mb = 1024 * 1024
    return {
        "train.lora_step_ratio_vs_full": ratio,
        "train.lora_mem_ratio_vs_full": peaks["lora"] / peaks["full"],
        "train.full_train_step_ms": secs["full"] * 1e3,
        "train.lora_train_step_ms": secs["lora"] * 1e3,
        "train.full_train_peak_mb": peaks["full"] / mb,
        "train.lora_train_peak_mb": peaks["lora"] / mb,
        "train.lora_setup": f"rank {rank} on every linear layer; a step = both modes' "
        "forwards, the sparse fusion loss, backward and Adam's update; memory = the training "
        "footprint (weights, gradients, Adam state, activations)",
    }
