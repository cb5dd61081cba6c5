"""The baseline we replace: dynamic time warping over token strings, in pure Python.

Written for the benchmark and the exactness tests, in the style of the earlier
tool: every (source, target) cell costs the Levenshtein distance between the
two token strings, the cheapest monotone path through the [n, m] grid pairs the
tokens, and ties fall where they fall. O(n * m) Python work; it is kept only to
be measured against, never used by the pipeline.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1 << 20)
def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two short strings (two-row DP)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def dtw_align(source_tokens: list[str], target_tokens: list[str]) -> np.ndarray:
    """Target-to-source pairing by DTW: for each target token its first partner on the path.

    # [n_s], [n_t] strings -> [n_t] source indices (-1 only when a side is empty)
    """
    n, m = len(source_tokens), len(target_tokens)
    out = np.full(m, -1, dtype=np.int64)
    if n == 0 or m == 0:
        return out
    inf = float("inf")
    # Costs need two rows only; the path needs every cell's step: 0 diag, 1 up, 2 left.
    step = bytearray(n * m)
    prev = [inf] * (m + 1)
    prev[0] = 0.0
    for i in range(n):
        s = source_tokens[i]
        cur = [inf] * (m + 1)
        base = i * m
        for j in range(m):
            diag, up, left = prev[j], prev[j + 1], cur[j]
            if diag <= up and diag <= left:
                best, move = diag, 0
            elif up <= left:
                best, move = up, 1
            else:
                best, move = left, 2
            cur[j + 1] = best + edit_distance(s, target_tokens[j])
            step[base + j] = move
        prev = cur
    i, j = n - 1, m - 1
    while i >= 0 and j >= 0:
        out[j] = i  # walking backwards, the last write for j is its first partner
        move = step[i * m + j]
        if i == 0 and j == 0:
            break
        if move == 0:
            i, j = i - 1, j - 1
        elif move == 1:
            i -= 1
        else:
            j -= 1
        if i < 0 or j < 0:
            break
    return out
