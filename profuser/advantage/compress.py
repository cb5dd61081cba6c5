"""Compact top-k teacher distributions from full-vocabulary logits (paper, appendix A).

The paper keeps, per position, the temperature-2 distribution cut to the top 10
tokens and then to top-p 0.95. Log-probabilities are those of the *full*
temperature-scaled softmax (not renormalised over the kept tokens), so a
consumer can tell how much mass was dropped and renormalise if it wants to.

Empty slots (positions where top-p kept fewer than k tokens) hold id -1 and
log-prob ``-inf``: ``exp(-inf) == 0`` so they carry no mass, and -inf cannot be
confused with a real log-prob of 0 (probability 1).
"""

from __future__ import annotations

import torch

DEFAULT_TEMPERATURE = 2.0
DEFAULT_TOP_K = 10
DEFAULT_TOP_P = 0.95
# 256 positions x 32k vocab x 4 bytes is 32 MiB of float32 per chunk.
DEFAULT_CHUNK_POSITIONS = 256


class NonFiniteLogitsError(ValueError):
    """Logits contain NaN or +-inf; ``rows`` lists the offending positions."""

    def __init__(self, rows: list[tuple[int, ...]]):
        self.rows = rows
        shown = ", ".join(str(r[0]) if len(r) == 1 else str(r) for r in rows[:10])
        more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
        super().__init__(
            f"logits contain NaN or inf at {len(rows)} position(s): {shown}{more}; "
            "the model produced non-finite values (check dtype overflow or the weights)"
        )


def _unravel(flat_rows: torch.Tensor, lead_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    out = []
    for flat in flat_rows.tolist():
        idx = []
        for size in reversed(lead_shape):
            idx.append(flat % size)
            flat //= size
        out.append(tuple(reversed(idx)))
    return out


def top_p_keep(logprobs: torch.Tensor, top_p: float | None) -> torch.Tensor:
    """Mask of the smallest prefix of sorted candidates whose probability reaches ``top_p``.

    ``logprobs`` ``[n, k]`` sorted descending; returns bool ``[n, k]``. A candidate
    is kept when the mass *before* it is still below ``top_p``, which keeps the
    token that crosses the threshold. When the top k do not reach ``top_p`` all
    are kept. ``top_p`` None or >= 1 keeps everything.
    """
    if top_p is None or top_p >= 1.0:
        return torch.ones_like(logprobs, dtype=torch.bool)
    if top_p <= 0.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    # float64 so the threshold test does not flip on float32 rounding of the sum.
    probs = logprobs.double().exp()
    mass_before = probs.cumsum(dim=-1) - probs
    return mass_before < top_p


def compress_logits(
    logits: torch.Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    top_k: int = DEFAULT_TOP_K,
    top_p: float | None = DEFAULT_TOP_P,
    chunk_positions: int = DEFAULT_CHUNK_POSITIONS,
    valid_vocab: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the top-k (then top-p) tokens of each position's temperature-scaled distribution.

    Args:
        logits: ``[n, V]`` (or ``[..., V]``) raw logits, any float dtype, any device.
        temperature: softmax temperature (the paper uses 2).
        top_k: candidates kept per position before the top-p cut.
        top_p: keep the smallest prefix whose probability reaches this; None keeps all k.
        chunk_positions: positions processed at once; bounds the float32
            ``[chunk, V]`` working copy, so ``[batch * seq, V]`` slices can be fed.
        valid_vocab: ids >= this are never candidates and are excluded from the
            softmax (a model whose ``config.vocab_size`` pads past ``len(tokenizer)``).

    Returns:
        ``ids`` int64 ``[n, k]`` (or ``[..., k]``), -1 in empty slots, and
        ``logprobs`` float32 of the same shape, sorted descending, ``-inf`` in
        empty slots. Both on the CPU.

    Raises:
        NonFiniteLogitsError (a ValueError): some position has NaN or inf logits
            among the valid vocabulary; the message names the positions.
    """
    if logits.ndim < 2:
        raise ValueError(f"logits must be [n, V] or [..., V], got shape {tuple(logits.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if chunk_positions < 1:
        raise ValueError(f"chunk_positions must be >= 1, got {chunk_positions}")
    lead_shape = tuple(logits.shape[:-1])
    vocab = logits.shape[-1]
    if valid_vocab is not None:
        if not 0 < valid_vocab:
            raise ValueError(f"valid_vocab must be positive, got {valid_vocab}")
        vocab = min(vocab, valid_vocab)
    flat = logits.reshape(-1, logits.shape[-1])  # [n, V_model]
    n = flat.shape[0]
    k_eff = min(top_k, vocab)

    ids_out = torch.full((n, top_k), -1, dtype=torch.int64)
    lp_out = torch.full((n, top_k), float("-inf"), dtype=torch.float32)
    bad_rows: list[torch.Tensor] = []
    for start in range(0, n, chunk_positions):
        # Slicing off the padded vocabulary is the same as masking it to -inf, without a copy.
        chunk = flat[start : start + chunk_positions, :vocab]  # [c, V]
        finite = torch.isfinite(chunk).all(dim=-1)
        if not bool(finite.all()):
            bad_rows.append((~finite).nonzero().flatten().cpu() + start)
            continue
        logp = torch.log_softmax(chunk.float() / temperature, dim=-1)  # [c, V]
        top_lp, top_ids = torch.topk(logp, k_eff, dim=-1, sorted=True)  # [c, k_eff]
        del logp
        keep = top_p_keep(top_lp, top_p)
        stop = start + chunk.shape[0]
        ids_out[start:stop, :k_eff] = torch.where(keep, top_ids, -1).cpu()
        lp_out[start:stop, :k_eff] = torch.where(keep, top_lp, float("-inf")).cpu()
    if bad_rows:
        raise NonFiniteLogitsError(_unravel(torch.cat(bad_rows), lead_shape))
    return ids_out.reshape(*lead_shape, top_k), lp_out.reshape(*lead_shape, top_k)
