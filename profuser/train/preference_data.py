"""Preference examples: each pair's two responses in the target's chat format and their
reference log-probabilities, and the sequence log-probabilities a model gives responses.

A response's sequence log-probability covers its answer tokens and the end-of-turn tokens
after them, in the model's own tokenizer and chat template, cut at ``max_length`` tokens as
the trainer cuts it: the same quantity the preference loop computes for the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from profuser.train.examples import ModeSequence, collate, make_sequence
from profuser.train.preference_losses import fused_reference, sequence_logprobs


@dataclass
class PairExample:
    """One preference pair in the target's tokenization, with its reference log-probs."""

    id: str
    chosen: ModeSequence
    rejected: ModeSequence
    ref_chosen: float
    ref_rejected: float


def response_logprobs(
    model: torch.nn.Module,
    tok,
    items: Sequence[tuple[str, str, str]],
    max_length: int,
    batch_tokens: int,
    cut_is_nan: bool = False,
) -> list[float]:
    """``model``'s sequence log-probability of each (system, instruction, response), in
    ``tok``'s chat format, batched by length (about ``batch_tokens`` tokens a batch).

    ``cut_is_nan``: NaN for a response that does not fit in ``max_length`` tokens with its
    prompt (a source's value the fused reference then leaves out), instead of the log-prob
    of its first part (what the trainer sees of the target's)."""
    seqs = [make_sequence(tok, s, q, a, None) for s, q, a in items]
    lengths = [
        min(len(q.prompt_ids) + len(q.answer_ids) + len(q.suffix_ids), max_length) for q in seqs
    ]
    order = sorted(range(len(seqs)), key=lambda i: lengths[i])
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    device = next(model.parameters()).device
    out = [0.0] * len(seqs)
    start = 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        while start < len(order):
            stop = start + 1
            while stop < len(order) and lengths[order[stop]] * (stop + 1 - start) <= batch_tokens:
                stop += 1
            idx = order[start:stop]
            batch = collate([seqs[i] for i in idx], pad, max_length, 1)
            logits = model(
                input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)
            ).logits  # [B, L, V]
            vals = sequence_logprobs(logits, batch.targets.labels.to(device))  # [B]
            for i, v in zip(idx, vals.tolist(), strict=True):
                out[i] = float(v)
            start = stop
    model.train(was_training)
    if cut_is_nan:
        for i, q in enumerate(seqs):
            if len(q.prompt_ids) + len(q.answer_ids) + len(q.suffix_ids) > max_length:
                out[i] = float("nan")
    return out


def pair_examples(
    tok,
    pairs: Sequence[dict],
    logprobs: dict[str, dict],
    sources: Sequence[str],
    reference: str,
    fuse_rule: str = "mean",
    clip: float = 1.0,
) -> list[PairExample]:
    """The pairs as examples, each with the reference the phase names: ``target`` (the
    target's starting log-probs) or ``fused`` (the sources', `fused_reference`).

    ``logprobs``: per pair id, the ``logprobs`` stage's row (``target/chosen``,
    ``<source>/rejected``...)."""
    out = []
    for p in pairs:
        lp = logprobs[p["id"]]
        ref = {side: lp[f"target/{side}"] for side in ("chosen", "rejected")}
        if reference == "fused":
            for side in ("chosen", "rejected"):
                src = torch.tensor(
                    [[_num(lp.get(f"{s}/{side}")) for s in sources]], dtype=torch.float64
                )
                tgt = torch.tensor([ref[side]], dtype=torch.float64)
                ref[side] = float(fused_reference(src, tgt, fuse_rule, clip)[0])
        out.append(
            PairExample(
                p["id"],
                make_sequence(tok, p["system"], p["instruction"], p["chosen"], None),
                make_sequence(tok, p["system"], p["instruction"], p["rejected"], None),
                ref["chosen"],
                ref["rejected"],
            )
        )
    return out


def _num(v) -> float:
    return float("nan") if v is None else float(v)
