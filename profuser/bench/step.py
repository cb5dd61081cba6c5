"""The model, batch and step the ``train`` benchmarks share: one small randomly initialised
Llama, one random batch with aligned top-k teachers, and one forward + loss + backward of a
named variant (``sft``, ``sparse``: profuser's fusion loss, ``dense``: a dense teacher)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

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


def bench_model(size: BenchSize, device: torch.device) -> torch.nn.Module:
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


def bench_batch(size: BenchSize, device: torch.device) -> dict[str, torch.Tensor]:
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


def mode_targets(batch: dict[str, torch.Tensor], rows: slice) -> ModeTargets:
    return ModeTargets(
        labels=batch["labels"][rows],
        teacher_ids=batch["teacher_ids"][rows],
        teacher_logprobs=batch["teacher_logprobs"][rows],
    )


def dense_kl_loss(
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


def sft_loss(logits: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
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


def fusion_step(variant: str, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> None:
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
        loss = sft_loss(logits, batch["labels"])
    elif variant == "sparse":
        infer = ModeBatch(logits[0], mode_targets(batch, slice(0, h)))
        train = ModeBatch(logits[1], mode_targets(batch, slice(h, None)))
        loss = fusion_loss(infer, train, WEIGHTS).total
        del infer, train
    elif variant == "dense":
        loss = dense_kl_loss(logits, batch)
    else:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    del logits  # only the autograd graph holds the logits from here on
    loss.backward()


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so a timer reads the step's end (nothing to wait for on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(
    steps: dict[str, Callable[[], None]], device: torch.device, repeats: int
) -> dict[str, list[float]]:
    """Seconds of each named step over ``repeats`` rounds, after one warm-up round.

    The steps run interleaved, alternating their order each round, so that a ratio taken
    within a round sees the same load on both sides. On CPU the steps run on one thread and are
    timed in process CPU time: on cores shared with other work, OpenMP threads wait on
    descheduled siblings and wall time measured that, not our code.
    """
    names = list(steps)
    cpu = device.type == "cpu"
    clock = time.process_time if cpu else time.perf_counter
    threads = torch.get_num_threads()
    if cpu:
        torch.set_num_threads(1)
    times: dict[str, list[float]] = {n: [] for n in names}
    try:
        for r in range(repeats + 1):  # round 0 warms up (allocations, kernels, Adam's state)
            for name in names if r % 2 else names[::-1]:
                sync(device)
                t0 = clock()
                steps[name]()
                sync(device)
                if r:
                    times[name].append(clock() - t0)
    finally:
        torch.set_num_threads(threads)
    return times


def median_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """The median over rounds of ``num``'s time over ``den``'s within the same round."""
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))
