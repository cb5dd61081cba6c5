"""`profuser bench teacher`: teacher-forcing cost and storage, on the tiny world."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from profuser.bench.registry import register
from profuser.models.chat import encode_turn
from profuser.models.loading import load_causal_lm, load_tokenizer, usable_vocab
from profuser.teacher.forcing import ForcedItem, length_batches, teacher_force
from profuser.teacher.storage import DistributionReader, DistributionWriter, padded_baseline_bytes
from profuser.world.check import read_jsonl


def _bare_forward(model, items, batches, pad) -> None:
    """What any teacher pass must do at least: the model on the same padded batches."""
    with torch.inference_mode():
        for b in batches:
            width = max(len(items[i].prompt_ids) + len(items[i].answer_ids) for i in b)
            ids = torch.full((len(b), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, i in enumerate(b):
                seq = items[i].prompt_ids + items[i].answer_ids
                ids[r, : len(seq)] = torch.tensor(seq)
                mask[r, : len(seq)] = 1
            model(input_ids=ids, attention_mask=mask)


@register("teacher")
def bench_teacher(
    n_examples: int = 400, source: str = "mpt-like", repeats: int = 7, world: Path | None = None
) -> dict:
    """Stage work over bare forward passes, bytes per stored token, and the padded-layout ratio."""
    from profuser.world.build import WorldSpec, build_world

    world = world or build_world(WorldSpec())
    d = world / "models" / source
    tok, model = load_tokenizer(str(d)), load_causal_lm(str(d))
    rows = read_jsonl(world / "data" / "train.jsonl")[:n_examples]
    items = []
    for r in rows:
        t = encode_turn(tok, r["system_prompt"], r["question"], r["response"])
        items.append(ForcedItem(r["id"], t.prompt_ids, t.answer_ids))
    vocab, pad, budget = usable_vocab(model, tok), tok.pad_token_id, 8192
    batches = length_batches(items, budget)
    stage_t, bare_t = [], []
    for rep in range(repeats + 1):  # interleaved, so drifting machine load hits both alike
        t0 = time.perf_counter()
        _bare_forward(model, items, batches, pad)
        bare_t.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            with DistributionWriter(Path(tmp) / "s", shard_size=200, vocab_size=vocab) as w:
                for res in teacher_force(
                    model, items, pad_id=pad, valid_vocab=vocab, batch_tokens=budget
                ):
                    w.add(res.key, res.ids, res.logprobs, ce=res.ce, n_tokens=res.n_tokens)
            stage_t.append(time.perf_counter() - t0)
            if rep == 0:  # warm-up round: first-use imports and allocations
                stage_t.pop()
                bare_t.pop()
            reader = DistributionReader(Path(tmp) / "s")
            disk, positions = reader.disk_bytes(), reader.num_positions
    n_tokens = sum(len(it.answer_ids) for it in items)
    return {
        "teacher.overhead_vs_forward": round(
            statistics.median(stage_t) / statistics.median(bare_t), 4
        ),
        "teacher.bytes_per_token": round(disk / positions, 3),
        "teacher.storage_ratio_vs_padded": round(padded_baseline_bytes(len(items)) / disk, 1),
        "teacher.tokens_per_s": round(n_tokens / statistics.median(stage_t), 1),
        "teacher.source": source,
        "teacher.examples": len(items),
    }
