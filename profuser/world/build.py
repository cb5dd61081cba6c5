"""Build the tiny world: data, three kinds of tokenizer, four small source models of three
architectures (the extended world: five kinds, six models of five architectures).

The extended world (``world: {roster: six}``, :data:`ROSTERS`) adds a Qwen2-like and a
Gemma-like source, with tokenizers of two more kinds, each strong at two skills of
``EXTRA_SKILLS`` that the world's other sources only see a little of.

Beside them: the world's reward model (``reward/tiny-rm``) and a tiny BERTScore encoder
(``encoder/tiny-bert``, :mod:`profuser.world.encoder`; outside the spec, added to a cached
world that lacks it).

Everything is seeded and saved with `save_pretrained`; the pipeline loads it
back only through the Auto classes, exactly as it loads 7B models. A world is
built once per spec and cached (``PROFUSER_CACHE`` or ``~/.cache/profuser``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from profuser.models.chat import encode_turn
from profuser.models.chat_templates import get_chat_template
from profuser.train.determinism import reproducible_attention
from profuser.world.architectures import source_model
from profuser.world.encoder import ensure_encoder
from profuser.world.pool import ensure_pool, write_examples
from profuser.world.reward import train_world_reward_model
from profuser.world.skills import (
    ALL_SKILLS,
    SKILLS,
    WorldExample,
    generate_examples,
    skill_weights,
    split_world,
)
from profuser.world.tokenizers import build_tokenizer

log = logging.getLogger("profuser")

WORLD_VERSION = 6


@dataclass(frozen=True)
class SourceSpec:
    """One tiny source: architecture, tokenizer kind, chat template and skill mix."""

    name: str
    arch: str  # llama | mpt | gpt_neox | qwen2 | gemma
    tokenizer: str  # a kind of profuser.world.tokenizers.TOKENIZER_KINDS
    chat_template: str
    strong: tuple[str, ...]  # skills trained with full weight; the rest get `weak_weight`


DEFAULT_SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("vicuna-like", "llama", "byte_bpe", "vicuna_v1.1", ("capital", "add")),
    SourceSpec("llama-chat-like", "llama", "byte_bpe", "llama-2", ("continent", "compare")),
    SourceSpec("mpt-like", "mpt", "metaspace_bpe", "chatml", ("parity", "next")),
    SourceSpec("neox-like", "gpt_neox", "wordpiece", "alpaca", ("before", "double")),
)

# The extended world's two more sources, in the order the source-scaling study adds them.
EXTRA_SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("qwen2-like", "qwen2", "digit_byte_bpe", "chatml", ("half", "triple")),
    SourceSpec("gemma-like", "gemma", "gemma_bpe", "gemma", ("initial", "tens")),
)
# A world's roster: its sources and the skills its data covers (``world: {roster: ...}``).
ROSTERS: dict[str, tuple[tuple[SourceSpec, ...], tuple[str, ...]]] = {
    "four": (DEFAULT_SOURCES, SKILLS),
    "six": (DEFAULT_SOURCES + EXTRA_SOURCES, ALL_SKILLS),
}

TOKENIZER_SIZES = {
    "byte_bpe": 512,
    "metaspace_bpe": 640,
    "wordpiece": 400,
    "digit_byte_bpe": 768,
    "gemma_bpe": 704,
}
EXTRA_SPECIALS = {
    "chatml": ("<|im_start|>", "<|im_end|>"),
    "gemma": ("<start_of_turn>", "<end_of_turn>"),
}


@dataclass(frozen=True)
class WorldSpec:
    """Everything a world depends on; its hash names the cache directory."""

    seed: int = 0
    n_train: int = 1200  # fusion training set (long GT answers)
    n_heldout_per_skill: int = 30
    n_source_examples: int = 2400  # per source, in its skill mix
    weak_weight: float = 0.04
    long_answer_share: float = 0.25  # share of source training answers that are long GT text
    hidden: int = 128
    layers: int = 2
    steps: int = 500
    batch: int = 32
    micro_batches: int = 3  # each batch in length-sorted parts: same gradient, less padding
    lr: float = 3e-3
    rm_steps: int = 900
    sources: tuple[SourceSpec, ...] = DEFAULT_SOURCES
    version: int = WORLD_VERSION
    extra: dict = field(default_factory=dict)
    skills: tuple[str, ...] = SKILLS  # the skills of the fusion set, the pool and the RM

    def key(self) -> str:
        spec = asdict(self)
        if tuple(spec["skills"]) == SKILLS:  # worlds built before `skills` keep their key
            del spec["skills"]
        blob = json.dumps(spec, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cache_root() -> Path:
    return Path(os.environ.get("PROFUSER_CACHE", Path.home() / ".cache" / "profuser"))


def source_examples(src: SourceSpec, spec: WorldSpec) -> list[tuple[WorldExample, str]]:
    """The (example, answer) pairs ``src`` is trained on: ``train`` questions in its skill mix."""
    weights = skill_weights(spec.skills, src.strong, spec.weak_weight)
    exs = generate_examples(spec.n_source_examples, spec.seed, f"src-{src.name}", weights)
    rng = random.Random(f"{spec.seed}-{src.name}-style")
    return [(e, e.response if rng.random() < spec.long_answer_share else e.short) for e in exs]


def train_source(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    data: list[tuple[WorldExample, str]],
    spec: WorldSpec,
    desc: str | None,
) -> list[float]:
    """Plain SFT on the source's own chat format (answers only); returns the loss curve.

    Batches are drawn at random, not grouped by length: length-grouped batches ran in
    half the time but each held one answer style and mostly one skill, and the sources
    learned their skills markedly worse (mpt-like, held-out: parity 0.57 against 1.00).
    Each random batch runs instead as ``spec.micro_batches`` length-sorted parts whose
    summed loss is the batch's mean over its answer tokens (see :func:`micro_batches`).

    Attention runs through its reproducible (math) kernel: the fused CPU kernel's backward
    pass let two same-seed builds differ with more than one thread.
    """
    rows = []
    for ex, answer in data:
        turn = encode_turn(tok, ex.system, ex.instruction, answer)
        labels = [-100] * len(turn.prompt_ids) + turn.answer_ids + turn.suffix_ids
        rows.append((turn.input_ids, labels))
    gen = torch.Generator().manual_seed(spec.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.0)
    warm = max(1, spec.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / warm)
            * 0.5
            * (1 + math.cos(math.pi * min(s, spec.steps) / spec.steps))
        ),
    )
    model.train()
    losses = []
    perm: list[int] = []
    for _ in tqdm(range(spec.steps), desc=desc, leave=False, disable=desc is None):
        if len(perm) < spec.batch:
            perm += torch.randperm(len(rows), generator=gen).tolist()
        idx, perm = perm[: spec.batch], perm[spec.batch :]
        total = batch_backward(model, [rows[i] for i in idx], tok.pad_token_id, spec.micro_batches)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(total)
    model.eval()
    return losses


def batch_backward(
    model: PreTrainedModel,
    batch: list[tuple[list[int], list[int]]],
    pad_id: int,
    parts: int,
) -> float:
    """Accumulate the gradient of the batch's mean next-token loss over its answer tokens,
    run as ``parts`` length-sorted micro-batches; returns that loss."""
    n_labels = sum(sum(t != -100 for t in labels[1:]) for _, labels in batch)
    total = 0.0
    for part in micro_batches(list(range(len(batch))), [len(x) for x, _ in batch], parts):
        ids, att, lab = _pad([batch[i] for i in part], pad_id)
        with reproducible_attention(True):
            logits = model(input_ids=ids, attention_mask=att).logits  # [b, T, V]
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(),
                lab[:, 1:].flatten(),
                ignore_index=-100,
                reduction="sum",
            ) / max(1, n_labels)
            loss.backward()
        total += loss.item()
    return total


def micro_batches(idx: list[int], lengths: list[int], parts: int) -> list[list[int]]:
    """``idx`` sorted by length and cut into ``parts`` near-equal micro-batches.

    The step still sees the same random batch (its loss is the mean over all its answer
    tokens); only the padding shrinks, since each micro-batch pads to its own longest row.
    Measured on vicuna-like's batches: 158 ms a step padded whole, 106 ms in three parts,
    114 ms in four (smaller products run less efficiently).
    """
    order = sorted(idx, key=lambda i: lengths[i])
    parts = max(1, min(parts, len(order)))
    cuts = [round(j * len(order) / parts) for j in range(parts + 1)]
    return [order[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def _pad(
    rows: list[tuple[list[int], list[int]]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding),
    each [b, longest row]."""
    width = max(len(x) for x, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    lab = torch.full((len(rows), width), -100, dtype=torch.long)
    for r, (x, y) in enumerate(rows):
        ids[r, : len(x)] = torch.tensor(x)
        att[r, : len(x)] = 1
        lab[r, : len(y)] = torch.tensor(y)
    return ids, att, lab


def world_corpus(
    train: list[WorldExample], seed: int, skills: tuple[str, ...] = SKILLS
) -> list[str]:
    """The text the world's tokenizers are trained on."""
    corpus = [t for e in train for t in (e.system, e.instruction, e.response)]
    draws = generate_examples(2000, seed, "corpus", skill_weights(skills))
    corpus += [f"{e.instruction} {e.response} {e.short}" for e in draws]
    return corpus


def build_world(
    spec: WorldSpec | None = None, root: Path | None = None, check: bool = True
) -> Path:
    """Build (or reuse) the world for ``spec``; returns its directory."""
    spec = spec or WorldSpec()
    root = root or cache_root()
    final = root / f"world-{spec.key()}"
    if (final / "world.json").is_file():
        # a world built before the encoder or the pool existed gets them added
        ensure_encoder(final)
        ensure_pool(final, spec.n_train, spec.seed, spec.skills)
        return final
    tmp = root / f".world-{spec.key()}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    train, heldout = split_world(spec.n_train, spec.n_heldout_per_skill, spec.seed, spec.skills)
    write_examples(tmp / "data" / "train.jsonl", train)
    write_examples(tmp / "data" / "heldout.jsonl", heldout)

    corpus = world_corpus(train, spec.seed, spec.skills)
    tokenizers: dict[str, PreTrainedTokenizerBase] = {}
    losses: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    for i, src in enumerate(spec.sources):
        tpl = get_chat_template(src.chat_template)
        extra = EXTRA_SPECIALS.get(src.chat_template, ())
        key = (src.tokenizer, extra)
        if key not in tokenizers:
            tokenizers[key] = build_tokenizer(
                src.tokenizer, corpus, TOKENIZER_SIZES[src.tokenizer], extra
            )
        tok = tokenizers[key]
        tok.chat_template = tpl
        torch.manual_seed(spec.seed * 1000 + i)
        model = source_model(src.arch, tok, spec.hidden, spec.layers)
        data = source_examples(src, spec)
        start = time.perf_counter()
        losses[src.name] = train_source(model, tok, data, spec, f"train {src.name}")
        seconds[src.name] = round(time.perf_counter() - start, 1)
        log.info("world: trained %s in %.0f s", src.name, seconds[src.name])
        out = tmp / "models" / src.name
        model.save_pretrained(out)
        tok.save_pretrained(out)
    # The demo's trained reward model: a voter beside the verifier and the reference scorer.
    # It trains on one thread after the sources. Training it in a process of its own beside
    # them was tried and lost time: the sources' two-thread products slowed by more than the
    # RM's own time (vicuna-like 67 s alone, 138 s beside it).
    start = time.perf_counter()
    train_world_reward_model(
        tmp / "reward" / "tiny-rm", corpus, spec.seed, steps=spec.rm_steps, skills=spec.skills
    )
    seconds["tiny-rm"] = round(time.perf_counter() - start, 1)
    log.info("world: trained the reward model in %.0f s", seconds["tiny-rm"])
    meta = {
        "spec": asdict(spec),
        "key": spec.key(),
        "final_loss": {k: v[-1] for k, v in losses.items()},
        "train_seconds": seconds,
    }
    if check:
        from profuser.world.check import skill_accuracy

        meta["accuracy"] = {
            src.name: skill_accuracy(tmp / "models" / src.name, tmp / "data" / "heldout.jsonl")
            for src in spec.sources
        }
    (tmp / "world.json").write_text(json.dumps(meta, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    ensure_encoder(final)
    ensure_pool(final, spec.n_train, spec.seed, spec.skills)
    return final
