"""The aligner on arbitrary byte strings (decoded as a reader of a broken file would)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profuser.align import TokenAligner
from tests.align.conftest import KINDS
from tests.align.reference import ref_anchors, ref_target_to_source

PAIRS = list(itertools.permutations(KINDS, 2))


@pytest.fixture(scope="module")
def aligners(tokenizers):
    return {(a, b): TokenAligner(tokenizers[a], tokenizers[b]) for a, b in PAIRS}


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}->{p[1]}")
@settings(max_examples=40, deadline=None)
@given(
    raw=st.binary(max_size=120), errors=st.sampled_from(["replace", "ignore", "backslashreplace"])
)
def test_arbitrary_bytes(aligners, tokenizers, pair, raw: bytes, errors: str) -> None:
    text = raw.decode("utf-8", errors=errors)
    al = aligners[pair].align(text)
    _, s_anc = ref_anchors(tokenizers[pair[0]], pair[0], text)
    _, t_anc = ref_anchors(tokenizers[pair[1]], pair[1], text)
    assert al.target_to_source.tolist() == ref_target_to_source(s_anc, t_anc)
    aligned = al.target_to_source[al.target_to_source >= 0]
    assert np.all(np.diff(aligned) > 0)
    # the source's own tokens as one-candidate distributions map to valid target ids, mass 1
    ids = al.source_ids[:, None]
    ids2, lps = aligners[pair].map_topk(ids, np.zeros_like(ids, dtype=np.float32))
    valid = ids2 >= 0
    assert np.all(ids2[valid] < len(tokenizers[pair[1]]))
    rows = valid.any(axis=1)
    mass = np.where(valid, np.exp(lps), 0.0).sum(axis=1)
    assert np.allclose(mass[rows], 1.0, atol=1e-5)
