"""The phased fusion training loop, under `accelerate` (one process, DDP, FSDP or DeepSpeed).

Each optimizer step takes ``effective_batch`` examples (a pure function of seed,
phase and step, see `order`), splits them over processes and micro-batches,
runs the target on both modes' sequences (a mode whose weight is 0 in the
phase is not run), and normalises every loss component by its token count over
the whole accumulation window, so the gradient is that of the window's mean
however the window is split. Checkpoints every N steps and at phase ends; a
killed run resumes from its last checkpoint.
"""

from __future__ import annotations

import csv
import inspect
import io
import logging
import math
import shutil
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import get_scheduler

from profuser.config import TrainConfig
from profuser.io import atomic_write_bytes, atomic_write_json, read_json
from profuser.train.determinism import reproducible_attention
from profuser.train.examples import FusionExample, collate
from profuser.train.lora import base_model, save_final, wrap_lora
from profuser.train.losses import (
    COMPONENTS,
    IGNORE_INDEX,
    ModeBatch,
    ModeTargets,
    PhaseWeights,
    fusion_counts,
    fusion_loss,
)
from profuser.train.order import phase_pool, step_examples, steps_per_epoch
from profuser.train.schedules import Phase, PhaseClock

log = logging.getLogger("profuser")


@dataclass
class TrainResult:
    steps: int
    final_dir: Path
    last_losses: dict[str, float]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def save_checkpoint(ckpt: Path, accelerator, model, opt, sched, step: int) -> None:
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_json(tmp / "profuser_state.json", {"step": step})
        old = ckpt.with_name(ckpt.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if ckpt.exists():
            ckpt.rename(old)
        tmp.rename(ckpt)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _window_counts(accelerator, mbs: list[tuple]) -> dict[str, torch.Tensor]:
    """Token counts per loss component over the whole window, all processes summed."""
    totals = {c: torch.zeros((), dtype=torch.long) for c in COMPONENTS}
    for infer, train in mbs:
        got = fusion_counts(infer.targets if infer else None, train.targets if train else None)
        for c, v in got.items():
            totals[c] += v.cpu()
    stacked = torch.stack([totals[c] for c in COMPONENTS]).to(accelerator.device)
    stacked = accelerator.reduce(stacked, reduction="sum")
    return {c: stacked[i].float().clamp(min=1) for i, c in enumerate(COMPONENTS)}


def train_fusion(
    model: torch.nn.Module,
    tok,
    examples: Sequence[FusionExample],
    phases: Sequence[Phase],
    cfg: TrainConfig,
    out_dir: Path,
    *,
    seed: int,
    k: int,
    accelerator=None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``examples`` through ``phases``; writes ``out_dir/final``.

    ``stop_after`` ends the run after that many steps without saving ``final``
    (used to test resumption).
    """
    from accelerate import Accelerator

    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    world, rank = accelerator.num_processes, accelerator.process_index
    eb = cfg.effective_batch
    clock = PhaseClock(phases, steps_per_epoch(len(examples), eb))
    pools = [phase_pool(examples, ph) for ph in phases]
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.lora is not None:
        if (
            cfg.gradient_checkpointing
        ):  # frozen embeddings: the checkpointed blocks need a grad input
            model.enable_input_require_grads()
        model = wrap_lora(model, cfg.lora, seed)
    model.train()
    opt = make_optimizer(model, cfg)
    sched = get_scheduler(
        cfg.lr_scheduler if cfg.lr_scheduler != "constant" else "constant_with_warmup",
        opt,
        num_warmup_steps=math.ceil(cfg.warmup_ratio * clock.total_steps),
        num_training_steps=clock.total_steps,
    )
    model, opt, sched = accelerator.prepare(model, opt, sched)
    trim = _keeps_logits(model)
    ckpt = out_dir / "checkpoint"
    start = 0
    if (ckpt / "profuser_state.json").is_file():
        accelerator.load_state(str(ckpt))
        start = read_json(ckpt / "profuser_state.json")["step"]
        log.info("train: resuming at step %d of %d", start, clock.total_steps)
    log_path = out_dir / "log.csv"
    rows = read_log(log_path, start)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    board = _tensorboard(out_dir / "tensorboard") if accelerator.is_main_process else None
    last: dict[str, float] = {}
    bar = tqdm(
        total=clock.total_steps,
        initial=start,
        desc=f"train {out_dir.name}",
        disable=not accelerator.is_main_process,
        leave=False,
    )
    for step in range(start, clock.total_steps):
        if stop_after is not None and step >= stop_after:
            break
        pidx, phase = clock.phase_at(step)
        batch_idx = step_examples(pools[pidx], clock.step_in_phase(step), eb, seed, pidx)
        mine = [examples[i] for i in batch_idx[rank::world]]
        # Micro-batches of similar length pad less; the window's loss is the same sum.
        mine.sort(key=_length)
        mbs = []
        for s in range(0, len(mine), cfg.micro_batch):
            chunk = mine[s : s + cfg.micro_batch]
            infer_seqs = [e.infer for e in chunk if e.infer is not None]
            infer = (
                collate(infer_seqs, pad, cfg.max_length, k) if phase.w1 > 0 and infer_seqs else None
            )
            train = (
                collate([e.train for e in chunk], pad, cfg.max_length, k) if phase.w2 > 0 else None
            )
            mbs.append((infer, train))
        denoms = _window_counts(accelerator, mbs)
        sums = {c: 0.0 for c in COMPONENTS}
        t0 = time.time()
        for j, (infer, train) in enumerate(mbs):
            weights = PhaseWeights(
                phase.w1 if infer else 0.0, phase.w2 if train else 0.0, phase.lam, phase.beta
            )
            if weights.w1 == 0 and weights.w2 == 0:
                continue
            sync = j == len(mbs) - 1
            ctx = accelerator.no_sync(model) if not sync else nullcontext()
            with ctx, reproducible_attention(cfg.deterministic):
                ib = _forward(model, infer, accelerator, trim) if infer else None
                tb = _forward(model, train, accelerator, trim) if train else None
                res = fusion_loss(ib, tb, weights, denominators=denoms)
                del ib, tb
                # DDP averages gradients over processes; the window-wide denominators already did.
                accelerator.backward(res.total * world)
            for c, v in res.components.items():
                sums[c] += float(v)
        if cfg.max_grad_norm > 0:
            accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        last = {c: sums[c] * world for c in COMPONENTS}
        rows.append(
            {
                "step": step + 1,
                "phase": phase.name,
                "lr": sched.get_last_lr()[0],
                "seconds": round(time.time() - t0, 4),
                **{c: round(v, 6) for c, v in last.items()},
            }
        )
        if board is not None:
            for c, v in last.items():
                board.add_scalar(f"loss/{c}", v, step + 1)
            board.add_scalar("lr", rows[-1]["lr"], step + 1)
        bar.update(1)
        at_phase_end = step + 1 == clock.starts[pidx] + clock.steps[pidx]
        if (step + 1) % cfg.checkpoint_every == 0 or at_phase_end:
            save_checkpoint(ckpt, accelerator, model, opt, sched, step + 1)
            if accelerator.is_main_process:
                write_log(log_path, rows)
    bar.close()
    if board is not None:
        board.close()
    final = out_dir / "final"
    done = stop_after is None or stop_after >= clock.total_steps
    if accelerator.is_main_process:
        write_log(log_path, rows)
        if done:
            tmp = out_dir / "final.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            save_final(accelerator.unwrap_model(model), tmp)
            tok.save_pretrained(tmp)
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
    accelerator.wait_for_everyone()
    return TrainResult(
        clock.total_steps if done else min(stop_after or 0, clock.total_steps), final, last
    )


def _tensorboard(directory: Path):
    """A TensorBoard writer when tensorboard is installed (``profuser[tensorboard]``), else None;
    log.csv is written either way."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.debug("tensorboard not installed: losses go to log.csv only")
        return None
    return SummaryWriter(str(directory))


def _length(example: FusionExample) -> int:
    t = example.train
    return len(t.prompt_ids) + len(t.answer_ids) + len(t.suffix_ids)


def _forward(model, inputs, accelerator, trim: bool) -> ModeBatch:
    """The target's logits on one mode's micro-batch, from the first position any loss counts.

    Positions before every row's answer (the system message and the question) feed attention
    but no loss, so where the model takes ``logits_to_keep`` (Hugging Face causal LMs) their
    ``[B, L, V]`` logits and log-softmax are never computed; the targets are sliced alike.
    ``trim``: whether it does (:func:`_keeps_logits`, asked once per run).
    """
    dev = accelerator.device
    t = inputs.targets
    start = _first_counted(t) if trim else 0
    width = inputs.input_ids.shape[1]
    kwargs = {"logits_to_keep": width - start} if start > 0 else {}
    logits = model(
        input_ids=inputs.input_ids.to(dev), attention_mask=inputs.attention_mask.to(dev), **kwargs
    ).logits  # [B, L - start, V]

    def cut(x):
        return x[:, start:].to(dev) if x is not None else None

    moved = ModeTargets(cut(t.labels), cut(t.teacher_ids), cut(t.teacher_logprobs), cut(t.kl_mask))
    return ModeBatch(logits, moved)


def _first_counted(t: ModeTargets) -> int:
    """The first sequence position where some row's SFT or KL term counts (0 if none)."""
    counted = (t.labels != IGNORE_INDEX) | t.mask()  # [B, L]
    cols = counted.any(dim=0).nonzero()
    return int(cols[0]) if len(cols) else 0


def _keeps_logits(model) -> bool:
    """Whether ``model.forward`` takes ``logits_to_keep`` (unwrapping DDP/FSDP and peft); peft
    passes unknown keywords through to the model it wraps."""
    return "logits_to_keep" in inspect.signature(base_model(model).forward).parameters


FIELDS = ["step", "phase", "lr", "seconds", *COMPONENTS]


def read_log(path: Path, upto_step: int) -> list[dict]:
    """The rows of a training ``log.csv`` up to ``upto_step`` (a resumed run's history)."""
    if not path.is_file():
        return []
    with path.open() as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= upto_step]


def write_log(path: Path, rows: list[dict], fields: list[str] = FIELDS) -> None:
    """A training ``log.csv`` with ``fields`` as its columns, written atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())
