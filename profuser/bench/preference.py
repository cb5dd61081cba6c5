"""A preference step against an SFT step, for ``profuser bench train``: the same randomly
initialised Llama and the same batch of B sequences, read as B/2 (chosen, rejected) pairs.

SFT: one forward per half of the batch (as `profuser.bench.step.fusion_step` runs them) and
token cross-entropy. Preference: the same two forwards, on the chosen and on the rejected
halves, each row's sequence log-probability and the DPO loss against stored reference
log-probs (`profuser.train.preference_losses`), as the preference loop takes it: no reference
model runs. Both with backward and Adam's update. Time and memory are measured as
:mod:`profuser.bench.lora` measures them.
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
from profuser.train.preference_losses import dpo_loss, sequence_logprobs

KINDS = ("sft", "preference")


def preference_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> None:
    """Forward both halves, DPO against fixed references, backward."""
    ids, labels = batch["input_ids"], batch["labels"]
    h = ids.shape[0] // 2
    pc = sequence_logprobs(model(input_ids=ids[:h], use_cache=False).logits, labels[:h])  # [B/2]
    pr = sequence_logprobs(model(input_ids=ids[h:], use_cache=False).logits, labels[h:])  # [B/2]
    ref_c = torch.full_like(pc, -1.0).detach() + pc.detach()
    ref_r = torch.full_like(pr, 1.0).detach() + pr.detach()
    dpo_loss(pc, pr, ref_c, ref_r, beta=0.1).loss.backward()


def _trainee(size: BenchSize, device: torch.device):
    model = bench_model(size, device)
    return model, torch.optim.Adam(model.parameters(), lr=1e-4)


def _train_step(kind: str, model, opt, batch) -> None:
    if kind == "sft":
        fusion_step("sft", model, batch)
    else:
        preference_step(model, batch)
    opt.step()
    opt.zero_grad(set_to_none=True)


def _cpu_child(kind: str, size_json: str) -> None:
    """Subprocess entry: prints ``{"peak_bytes": ...}``, the training footprint of ``kind``."""
    size = BenchSize(**json.loads(size_json))
    cpu = torch.device("cpu")
    batch = bench_batch(size, cpu)
    reset_peak()
    before = rss_kb()
    model, opt = _trainee(size, cpu)
    for _ in range(2):
        _train_step(kind, model, opt, batch)
    print(json.dumps({"peak_bytes": max(peak_kb() - before, 1) * 1024}))


def _peaks(size: BenchSize, device: torch.device) -> dict[str, int]:
    out: dict[str, int] = {}
    if device.type == "cuda":
        batch = bench_batch(size, device)
        for kind in KINDS:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            model, opt = _trainee(size, device)
            for _ in range(2):
                _train_step(kind, model, opt, batch)
            torch.cuda.synchronize(device)
            out[kind] = torch.cuda.max_memory_allocated(device) - before
            del model, opt
        return out
    args = [json.dumps(asdict(size))]
    return child_peaks("profuser.bench.preference", {k: [k, *args] for k in KINDS})


def bench_preference(size: BenchSize, device: torch.device, repeats: int) -> dict[str, float | str]:
    """``train.preference_*`` figures: a preference step's time and footprint over SFT's."""
    peaks = _peaks(size, device)
    batch = bench_batch(size, device)
    trainees = {k: _trainee(size, device) for k in KINDS}
    times = interleaved_times(
        {k: (lambda k=k: _train_step(k, *trainees[k], batch)) for k in KINDS}, device, repeats
    )
    secs = {k: statistics.median(ts) for k, ts in times.items()}
    mb = 1024 * 1024
    return {
        "train.preference_step_ratio_vs_sft": median_ratio(times, "preference", "sft"),
        "train.preference_mem_ratio_vs_sft": peaks["preference"] / peaks["sft"],
        "train.preference_step_ms": secs["preference"] * 1e3,
        "train.preference_peak_mb": peaks["preference"] / mb,
        "train.preference_setup": f"B={size.batch} sequences as {size.batch // 2} pairs; DPO "
        "against stored reference log-probs (no reference model), backward and Adam's update",
    }
