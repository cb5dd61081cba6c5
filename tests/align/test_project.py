"""Merging candidates and projecting source rows onto target positions."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from profuser.align import (
    EMPTY_LOGPROB,
    UNALIGNED_POLICIES,
    TokenAligner,
    merge_topk,
    project_to_target,
)


def test_merge_topk_sums_sorts_and_renormalises():
    ids = np.array([[5, 3, 5, -1], [-1, -1, -1, -1], [7, 8, 9, 7]])
    p_in = np.array([[0.1, 0.3, 0.3, 0.3], [0.5, 0.5, 0.0, 0.0], [0.1, 0.1, 0.1, 0.1]])
    lp = np.log(np.where(p_in > 0, p_in, 1.0)) + np.where(p_in > 0, 0.0, -np.inf)
    out_ids, out_lp = merge_topk(ids, lp)
    assert out_ids.tolist() == [[5, 3, -1, -1], [-1, -1, -1, -1], [7, 8, 9, -1]]
    p = np.exp(out_lp.astype(np.float64))
    assert p[0, :2] == pytest.approx([4 / 7, 3 / 7])
    assert p[2, :3] == pytest.approx([0.5, 0.25, 0.25])
    assert np.isneginf(out_lp[1]).all() and np.isneginf(out_lp[0, 2:]).all()
    assert out_lp.dtype == np.float32
    with pytest.raises(ValueError):
        merge_topk(ids, lp[:, :2])


def test_merge_topk_keeps_precision_for_tiny_logprobs():
    ids = np.array([[1, 2]])
    out_ids, out_lp = merge_topk(ids, np.array([[-900.0, -901.0]]))
    p = np.exp(out_lp.astype(np.float64))
    assert out_ids.tolist() == [[1, 2]] and p.sum() == pytest.approx(1.0)


def test_policies_match_the_config():
    assert set(UNALIGNED_POLICIES) == {"onehot_gt", "skip"}
    config = pytest.importorskip("profuser.config")
    field = config.AdvantageConfig.model_fields["unaligned"]
    assert set(typing.get_args(field.annotation)) == set(UNALIGNED_POLICIES)


def test_project_to_target_policies():
    target_ids = np.array([10, 11, 12, 13])
    t2s = np.array([0, -1, 2, 1])
    src_ids = np.array([[100, 101], [-1, -1], [102, -1]])
    src_lp = np.array([[np.log(0.6), np.log(0.4)], [EMPTY_LOGPROB] * 2, [0.0, EMPTY_LOGPROB]])
    one = project_to_target(target_ids, t2s, src_ids, src_lp, "onehot_gt")
    assert one.ids.tolist() == [[100, 101], [11, -1], [102, -1], [13, -1]]
    assert one.mask.tolist() == [True, True, True, True]
    assert one.aligned.tolist() == [True, False, True, False]  # row 3's source row is empty
    assert one.logprobs[1, 0] == 0.0 and np.isneginf(one.logprobs[1, 1])
    skip = project_to_target(target_ids, t2s, src_ids, src_lp, "skip")
    assert skip.mask.tolist() == [True, False, True, False]
    assert skip.ids[1].tolist() == [-1, -1] and skip.ids[3].tolist() == [-1, -1]
    with pytest.raises(ValueError, match="policy"):
        project_to_target(target_ids, t2s, src_ids, src_lp, "nearest")
    with pytest.raises(ValueError):
        project_to_target(target_ids, np.array([0, 5, -1, -1]), src_ids, src_lp)


@pytest.mark.parametrize(
    "pair",
    [
        ("byte_bpe", "metaspace_bpe"),
        ("metaspace_bpe", "wordpiece"),
        ("wordpiece", "byte_bpe"),
        ("byte_bpe", "byte_bpe"),
    ],
)
def test_teacher_forced_rows_land_on_the_target_token(tokenizers, pair):
    """Row i predicts source token i, so target token j gets the row that predicts
    the text starting where j starts; with one-hot rows on the source's own tokens
    the projected row is the target's own token wherever the two spell it alike."""
    al = TokenAligner(tokenizers[pair[0]], tokenizers[pair[1]])
    text = "The capital of France is Paris. We count 7 steps from 3 to get 10."
    a = al.align(text)
    n_s = len(a.source_ids)
    src_ids = np.full((n_s, 3), -1)
    src_ids[:, 0] = a.source_ids
    src_lp = np.full((n_s, 3), EMPTY_LOGPROB)
    src_lp[:, 0] = 0.0
    proj = al.project(a, src_ids, src_lp, policy="skip")
    assert proj.ids.shape == (len(a.target_ids), 3)
    same = 0
    for j in np.flatnonzero(proj.aligned):
        i = a.target_to_source[j]
        src_text = al.source_table.surfaces[a.source_ids[i]].strip()
        tgt_text = al.target_table.surfaces[a.target_ids[j]].strip()
        if src_text == tgt_text:
            assert proj.ids[j, 0] == a.target_ids[j], (j, src_text, tgt_text)
            same += 1
    assert same >= 5
    assert not proj.mask[~proj.aligned].any()
    onehot = al.project(a, src_ids, src_lp, policy="onehot_gt")
    rows = np.flatnonzero(~onehot.aligned)
    assert (onehot.ids[rows, 0] == a.target_ids[rows]).all() and onehot.mask.all()
