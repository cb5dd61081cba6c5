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
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from profuser.bench.registry import register
from profuser.train.losses import IGNORE_INDEX, ModeBatch, ModeTargets, PhaseWeights, fusion_loss

VARIANTS = ("sft", "sparse", "dense")
# ProFuser's co-fusion phase (appendix A): both modes and both KLs are live
WEIGHTS = PhaseWeights(w1=0.1, w2=1.0, lam=0.5, beta=0.5)


@dataclass(frozen=True)
class BenchSize:
    """Sizes of the benchmark model and batch."""

    batch: int = 4
    seq: int = 512
    vocab: int = 8000
    hidden: int = 256
    layers: int = 2
    k: int = 10

    def __post_init__(self) -> None:
        if self.batch < 2 or self.batch % 2:
            raise ValueError(f"batch must be even and >= 2 (half per mode), got {self.batch}")
        if self.k > self.vocab:
            raise ValueError(f"k={self.k} exceeds the vocabulary ({self.vocab})")


def _model(size: BenchSize, device: torch.device) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    heads = max(1, size.hidden // 64)
    config = LlamaConfig(
        vocab_size=size.vocab,
        hidden_size=size.hidden,
        intermediate_size=size.hidden * 8 // 3,
        num_hidden_layers=size.layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max(size.seq, 16),
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).to(device).train()


def _batch(size: BenchSize, device: torch.device) -> dict[str, torch.Tensor]:
    """Random inputs; labels and teacher tensors already aligned to the logits positions."""
    g = torch.Generator().manual_seed(1)
    b, seq, v, k = size.batch, size.seq, size.vocab, size.k
    input_ids = torch.randint(0, v, (b, seq), generator=g)  # [B, L]
    labels = torch.randint(0, v, (b, seq), generator=g)
    labels[:, : seq // 4] = IGNORE_INDEX  # the prompt
    labels[:, -1] = IGNORE_INDEX
    # distinct ids per position without a dense [B, L, V] draw: one random offset per position
    # plus k distinct shared strides, modulo V
    strides = torch.randperm(v, generator=g)[:k]
    base = torch.randint(0, v, (b, seq, 1), generator=g)
    teacher_ids = (base + strides) % v  # [B, L, k]
    teacher_ids = teacher_ids.masked_fill(torch.rand(b, seq, k, generator=g) < 0.2, -1)
    teacher_logprobs = (torch.randn(b, seq, k, generator=g) - 2.0).to(torch.float16)
    out = {
        "input_ids": input_ids,
        "labels": labels,
        "teacher_ids": teacher_ids,
        "teacher_logprobs": teacher_logprobs,
    }
    return {name: t.to(device) for name, t in out.items()}


def _targets(batch: dict[str, torch.Tensor], rows: slice) -> ModeTargets:
    return ModeTargets(
        labels=batch["labels"][rows],
        teacher_ids=batch["teacher_ids"][rows],
        teacher_logprobs=batch["teacher_logprobs"][rows],
    )


def _dense_kl_loss(
    logits: tuple[torch.Tensor, torch.Tensor], batch: dict[str, torch.Tensor]
) -> torch.Tensor:
    """The fusion objective with a materialised dense teacher, as FuseLLM's collator builds it.

    ``logits``: per mode ``[B/2, L, V]``. The dense ``[B, L, V]`` float32 teacher is built for
    the whole batch (as a collator would) and the KL is the soft-target cross-entropy
    −Σ_V p log q, which has the KL's gradient and is the cheapest dense form.
    """
    ids, lps = batch["teacher_ids"], batch["teacher_logprobs"]
    valid = ids >= 0
    p = torch.softmax(lps.float().masked_fill(~valid, float("-inf")), dim=-1)  # [B, L, k]
    p = p.nan_to_num(0.0).masked_fill(~valid, 0.0)  # rows with no valid slot are NaN
    v = logits[0].shape[-1]
    dense = torch.zeros(*ids.shape[:2], v, device=ids.device)  # [B, L, V]
    dense.scatter_add_(-1, ids.clamp(min=0), p)  # add: empty slots (p = 0) may share an id
    labels = batch["labels"]
    h = labels.shape[0] // 2
    total = logits[0].new_zeros(())
    modes = ((slice(0, h), WEIGHTS.w1, WEIGHTS.lam), (slice(h, None), WEIGHTS.w2, WEIGHTS.beta))
    for mode_logits, (rows, w, coef) in zip(logits, modes, strict=True):
        log_q = torch.log_softmax(mode_logits.float(), dim=-1)  # [B/2, L, V]
        keep = labels[rows] != IGNORE_INDEX
        kl_keep = keep & valid[rows].any(dim=-1)
        nll = -log_q.gather(-1, labels[rows].clamp(min=0).unsqueeze(-1)).squeeze(-1)
        soft_ce = -(dense[rows] * log_q).sum(dim=-1)  # [B/2, L]
        sft = nll[keep].sum() / keep.sum().clamp(min=1)
        kl = soft_ce[kl_keep].sum() / kl_keep.sum().clamp(min=1)
        total = total + w * (sft + coef * kl)
    return total


def _sft_loss(logits: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Plain token cross-entropy per mode (``torch.nn.functional.cross_entropy``), same weights."""
    h = labels.shape[0] // 2
    total = logits[0].new_zeros(())
    for mode_logits, rows, w in zip(
        logits, (slice(0, h), slice(h, None)), (WEIGHTS.w1, WEIGHTS.w2), strict=True
    ):
        ce = torch.nn.functional.cross_entropy(
            mode_logits.flatten(0, 1).float(), labels[rows].reshape(-1), ignore_index=IGNORE_INDEX
        )
        total = total + w * ce
    return total


def _step(variant: str, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> None:
    """One forward + loss + backward of ``variant`` (gradients accumulate into ``.grad``).

    Every variant runs the same two forwards, one per mode (a trainer does so because the
    modes' sequences differ in length), so only the loss differs between them.
    """
    ids = batch["input_ids"]
    h = ids.shape[0] // 2
    logits = (
        model(input_ids=ids[:h], use_cache=False).logits,  # [B/2, L, V] inference mode
        model(input_ids=ids[h:], use_cache=False).logits,  # [B/2, L, V] training mode
    )
    if variant == "sft":
        loss = _sft_loss(logits, batch["labels"])
    elif variant == "sparse":
        infer = ModeBatch(logits[0], _targets(batch, slice(0, h)))
        train = ModeBatch(logits[1], _targets(batch, slice(h, None)))
        loss = fusion_loss(infer, train, WEIGHTS).total
        del infer, train
    elif variant == "dense":
        loss = _dense_kl_loss(logits, batch)
    else:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    del logits  # only the autograd graph holds the logits from here on
    loss.backward()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_steps(
    size: BenchSize, device: torch.device, repeats: int, variants: tuple[str, ...]
) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds per step, and median ratio to ``sft`` over adjacent pairs.

    Variants run interleaved, alternating their order each round, and each ratio is taken
    within a round: load drifts between rounds but hardly within one. On CPU the steps run on
    one thread and are timed in process CPU time: on cores shared with other work, OpenMP
    threads wait on descheduled siblings and wall time measured that, not our code.
    """
    model = _model(size, device)
    batch = _batch(size, device)
    cpu = device.type == "cpu"
    clock = time.process_time if cpu else time.perf_counter
    threads = torch.get_num_threads()
    if cpu:
        torch.set_num_threads(1)
    times: dict[str, list[float]] = {v: [] for v in variants}
    try:
        for r in range(repeats + 1):  # round 0 warms up (allocations, kernels)
            for variant in variants if r % 2 else variants[::-1]:
                model.zero_grad(set_to_none=False)
                _sync(device)
                t0 = clock()
                _step(variant, model, batch)
                _sync(device)
                if r:
                    times[variant].append(clock() - t0)
    finally:
        torch.set_num_threads(threads)
    medians = {v: statistics.median(ts) for v, ts in times.items()}
    ratios = {
        v: statistics.median(t / s for t, s in zip(times[v], times["sft"], strict=True))
        for v in variants
    }
    return medians, ratios


# ---------------------------------------------------------------------------------------------
# Peak memory
# ---------------------------------------------------------------------------------------------


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _peak_kb() -> int:
    """Resident high-water mark (VmHWM, resettable) or, without /proc, ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def _reset_peak() -> bool:
    # Linux >= 4.0: "5" resets the high-water mark to the current RSS, so import and model
    # building transients cannot mask the step's own peak
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _cpu_child(variant: str, size_json: str) -> None:
    """Entry point of the CPU memory subprocess: prints ``{"peak_bytes": ...}`` as JSON."""
    size = BenchSize(**json.loads(size_json))
    device = torch.device("cpu")
    model = _model(size, device)
    batch = _batch(size, device)
    # warm up on a short batch: grads, thread pools and lazy init stay out of the measurement
    short = {n: t[:, : min(8, size.seq)].contiguous() for n, t in batch.items()}
    _step(variant, model, short)
    model.zero_grad(set_to_none=False)
    reset = _reset_peak()
    before = _rss_kb()
    high_before = _peak_kb()
    _step(variant, model, batch)
    peak = _peak_kb()
    if not reset and peak <= high_before:
        raise RuntimeError("the step did not raise the high-water mark; cannot measure its peak")
    print(json.dumps({"peak_bytes": max(peak - before, 1) * 1024}))


def _cpu_peaks(size: BenchSize) -> dict[str, int]:
    """Step peak bytes of each variant, each in a fresh process (run side by side)."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"  # large blocks mmapped: a free leaves the RSS
    env.setdefault("OMP_NUM_THREADS", "1")  # memory only: keep the children light
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
    model = _model(size, device)
    batch = _batch(size, device)
    out: dict[str, int] = {}
    for variant in VARIANTS:
        _step(variant, model, batch)  # grads exist from here on, like the CPU path
        model.zero_grad(set_to_none=False)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        _step(variant, model, batch)
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
) -> dict[str, float | int | str]:
    """Time and peak memory of a fusion step (both sparse KLs) against SFT and a dense teacher.

    Returns ``train.step_ratio_vs_sft`` (goal <= 1.10), ``train.mem_ratio_vs_sft`` (goal
    <= 1.10), ``train.mem_ratio_dense_over_sparse`` and absolute figures for the record.
    Sizes default to a small Llama (about 30 s on 2 CPU cores); ``time_dense`` also times the
    dense-teacher step (memory is always measured for all three).
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
    return out
