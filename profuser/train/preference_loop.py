"""The preference phase's training loop (implicit fusion), under `accelerate` like the fusion loop.

Each optimizer step takes ``effective_batch`` pairs (the same seeded order as the fusion
loop's, `profuser.train.order.step_examples`), splits them over processes and micro-batches,
runs the target on each pair's chosen and rejected response, and takes the DPO loss
(`profuser.train.preference_losses.dpo_loss`) against the reference log-probs stored with
the pairs, weighted so the accumulated gradient is that of the window's mean over pairs.
It has its own optimizer and learning-rate schedule (the phase's ``lr``, else
``train.preference_lr``, else ``train.lr``),
checkpoints like the fusion loop and resumes from its last checkpoint.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import get_scheduler

from profuser.config import TrainConfig
from profuser.io import read_json
from profuser.train.determinism import reproducible_attention
from profuser.train.examples import collate
from profuser.train.loop import TrainResult, make_optimizer, read_log, save_checkpoint, write_log
from profuser.train.lora import save_final, wrap_lora
from profuser.train.order import step_examples, steps_per_epoch
from profuser.train.preference_data import PairExample
from profuser.train.preference_losses import dpo_loss, sequence_logprobs
from profuser.train.schedules import Phase

LOG_FIELDS = ["step", "phase", "lr", "seconds", "dpo", "margin", "accuracy"]


def preference_steps(n_pairs: int, phase: Phase, batch: int) -> int:
    """Optimizer steps of a preference phase: its epochs over the pairs, at least one."""
    return max(1, math.floor(phase.epochs * steps_per_epoch(n_pairs, batch) + 0.5))


def _policy_logps(model, seqs, pad: int, cfg: TrainConfig, device) -> torch.Tensor:
    batch = collate(seqs, pad, cfg.max_length, 1)
    logits = model(
        input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)
    ).logits  # [B, L, V]
    return sequence_logprobs(logits, batch.targets.labels.to(device))  # [B]


def train_preference(
    model: torch.nn.Module,
    tok,
    pairs: Sequence[PairExample],
    phase: Phase,
    cfg: TrainConfig,
    out_dir: Path,
    *,
    seed: int,
    accelerator=None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``pairs`` for the preference ``phase``; writes ``out_dir/final``.

    ``stop_after`` ends the run after that many steps without saving ``final`` (tests)."""
    from accelerate import Accelerator

    opts = phase.preference
    if opts is None:
        raise ValueError(f"phase {phase.name!r} is not a preference phase")
    if not pairs:
        raise ValueError(f"phase {phase.name!r} has no preference pairs to train on")
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    world, rank = accelerator.num_processes, accelerator.process_index
    eb = cfg.effective_batch
    total = preference_steps(len(pairs), phase, eb)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.lora is not None:
        if cfg.gradient_checkpointing:
            model.enable_input_require_grads()
        model = wrap_lora(model, cfg.lora, seed)
    model.train()
    lr_cfg = cfg.model_copy(update={"lr": opts.lr or cfg.preference_lr or cfg.lr})
    opt = make_optimizer(model, lr_cfg)
    sched = get_scheduler(
        cfg.lr_scheduler if cfg.lr_scheduler != "constant" else "constant_with_warmup",
        opt,
        num_warmup_steps=math.ceil(cfg.warmup_ratio * total),
        num_training_steps=total,
    )
    model, opt, sched = accelerator.prepare(model, opt, sched)
    ckpt = out_dir / "checkpoint"
    start = 0
    if (ckpt / "profuser_state.json").is_file():
        accelerator.load_state(str(ckpt))
        start = read_json(ckpt / "profuser_state.json")["step"]
    log_path = out_dir / "log.csv"
    rows = read_log(log_path, start)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    dev = accelerator.device
    pool = list(range(len(pairs)))
    last: dict[str, float] = {}
    bar = tqdm(
        total=total,
        initial=start,
        desc=f"train {out_dir.name} (preference)",
        disable=not accelerator.is_main_process,
        leave=False,
    )
    for step in range(start, total):
        if stop_after is not None and step >= stop_after:
            break
        batch_idx = step_examples(pool, step, eb, seed, 0)
        mine = [pairs[i] for i in batch_idx[rank::world]]
        t0 = time.time()
        sums = {"dpo": 0.0, "margin": 0.0, "accuracy": 0.0}
        for s in range(0, len(mine), cfg.micro_batch):
            chunk = mine[s : s + cfg.micro_batch]
            sync = s + cfg.micro_batch >= len(mine)
            ctx = accelerator.no_sync(model) if not sync else nullcontext()
            with ctx, reproducible_attention(cfg.deterministic):
                pc = _policy_logps(model, [p.chosen for p in chunk], pad, cfg, dev)
                pr = _policy_logps(model, [p.rejected for p in chunk], pad, cfg, dev)
                ref_c = torch.tensor([p.ref_chosen for p in chunk], dtype=pc.dtype, device=dev)
                ref_r = torch.tensor([p.ref_rejected for p in chunk], dtype=pr.dtype, device=dev)
                res = dpo_loss(pc, pr, ref_c, ref_r, opts.beta, opts.label_smoothing)
                # this micro-batch's share of the window's mean; DDP averages over processes
                share = len(chunk) / len(batch_idx)
                accelerator.backward(res.loss * share * world)
            sums["dpo"] += float(res.loss.detach()) * share
            sums["margin"] += float(res.margins.mean()) * share
            sums["accuracy"] += float(res.accuracy) * share
        if world > 1:  # the logged means cover every process's share of the window
            got = accelerator.reduce(torch.tensor(list(sums.values()), device=dev), "sum")
            sums = dict(zip(sums, got.tolist(), strict=True))
        if cfg.max_grad_norm > 0:
            accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        last = sums
        rows.append(
            {
                "step": step + 1,
                "phase": phase.name,
                "lr": sched.get_last_lr()[0],
                "seconds": round(time.time() - t0, 4),
                **{k: round(v, 6) for k, v in sums.items()},
            }
        )
        bar.update(1)
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == total:
            save_checkpoint(ckpt, accelerator, model, opt, sched, step + 1)
            if accelerator.is_main_process:
                write_log(log_path, rows, LOG_FIELDS)
    bar.close()
    final = out_dir / "final"
    done = stop_after is None or stop_after >= total
    if accelerator.is_main_process:
        write_log(log_path, rows, LOG_FIELDS)
        if done:
            tmp = out_dir / "final.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            save_final(accelerator.unwrap_model(model), tmp)
            tok.save_pretrained(tmp)
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
    accelerator.wait_for_everyone()
    return TrainResult(total if done else min(stop_after or 0, total), final, last)
