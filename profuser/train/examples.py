"""Fusion examples: the target's token sequences of both modes and their aligned teachers.

Every array here is in the target's tokenization. A teacher row ``[k]`` belongs
to an answer token and holds the distribution that predicts it; the collator
moves it to the logits position one step earlier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from profuser.models.chat import encode_turn
from profuser.train.losses import IGNORE_INDEX, ModeTargets


@dataclass
class ModeSequence:
    """One mode's sequence: prompt + answer + end-of-turn, and the answer's teacher rows."""

    prompt_ids: list[int]
    answer_ids: list[int]
    suffix_ids: list[int]
    teacher_ids: np.ndarray | None  # [n_answer, k], -1 empty
    teacher_logprobs: np.ndarray | None  # [n_answer, k]


@dataclass
class FusionExample:
    """An instruction with its training-mode (GT) and, when chosen, inference-mode sequences."""

    id: str
    gt_length: int  # characters of the GT answer (curriculum key)
    train: ModeSequence
    infer: ModeSequence | None = None
    rm_score: float = float("nan")  # target's own answer score (curriculum key)


def make_sequence(
    tok, system: str, instruction: str, answer: str, teacher: tuple | None
) -> ModeSequence:
    """Encode one mode in the target's chat template and attach its teacher rows."""
    turn = encode_turn(tok, system, instruction, answer)
    ids, lps = teacher if teacher is not None else (None, None)
    if ids is not None and len(ids) != len(turn.answer_ids):
        raise ValueError(
            f"teacher rows ({len(ids)}) do not match the target's answer tokens ({len(turn.answer_ids)})"
        )
    return ModeSequence(turn.prompt_ids, turn.answer_ids, turn.suffix_ids, ids, lps)


@dataclass
class ModeInputs:
    """A collated mode: model inputs and loss targets, aligned to logits positions."""

    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, L]
    targets: ModeTargets


def collate(seqs: list[ModeSequence], pad_id: int, max_length: int, k: int) -> ModeInputs:
    """Right-padded batch; labels cover answer and end-of-turn, teachers cover the answer."""
    full = [(s.prompt_ids + s.answer_ids + s.suffix_ids)[:max_length] for s in seqs]
    width = max(len(f) for f in full)
    B = len(seqs)
    input_ids = torch.full((B, width), pad_id, dtype=torch.long)
    attn = torch.zeros((B, width), dtype=torch.long)
    labels = torch.full((B, width), IGNORE_INDEX, dtype=torch.long)
    t_ids = torch.full((B, width, k), -1, dtype=torch.long)
    t_lp = torch.full((B, width, k), float("-inf"), dtype=torch.float32)
    any_teacher = False
    for r, (s, f) in enumerate(zip(seqs, full, strict=True)):
        n = len(f)
        input_ids[r, :n] = torch.tensor(f)
        attn[r, :n] = 1
        p = len(s.prompt_ids)
        if p >= n:
            continue  # prompt alone fills max_length: nothing to learn here
        # logits at position j predict token j + 1
        labels[r, p - 1 : n - 1] = torch.tensor(f[p:n])
        if s.teacher_ids is not None:
            m = min(len(s.answer_ids), n - p)
            kk = min(k, s.teacher_ids.shape[1])
            t_ids[r, p - 1 : p - 1 + m, :kk] = torch.from_numpy(
                np.asarray(s.teacher_ids[:m, :kk], dtype=np.int64)
            )
            t_lp[r, p - 1 : p - 1 + m, :kk] = torch.from_numpy(
                np.asarray(s.teacher_logprobs[:m, :kk], dtype=np.float32)
            )
            any_teacher = True
    targets = ModeTargets(labels, t_ids, t_lp) if any_teacher else ModeTargets(labels)
    return ModeInputs(input_ids, attn, targets)
