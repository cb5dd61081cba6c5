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
from profuser.align.project import count_mass, mass_shares
from profuser.align.vocab_map import MAP_DROPPED, MAP_EXACT, MAP_KINDS, MAP_PREFIX, MAP_UNK


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


def _digits_tokenizer(whole_year: bool):
    """A hand-made tokenizer: digits, ".", "20", "24" and, for the source, "2024" whole and
    an end-of-turn marker "<|end|>" that the target lacks (and the target has no unk)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"2": 0, "0": 1, "4": 2, ".": 3, "20": 4, "24": 5}
    merges = [("2", "0"), ("2", "4")]
    if whole_year:
        vocab.update({"2024": 6, "</s>": 7, "<|end|>": 8})
        merges.append(("20", "24"))
    else:
        vocab["</s>"] = 6
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Punctuation()
    extra = ["<|end|>"] if whole_year else None
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", additional_special_tokens=extra
    )


def test_mass_on_a_hand_made_pair():
    """ "2024." is "2024" "." in the source and "20" "24" "." in the target."""
    src, tgt = _digits_tokenizer(True), _digits_tokenizer(False)
    al = TokenAligner(src, tgt, cache=False)
    a = al.align("2024.")
    assert a.target_ids.tolist() == [4, 5, 3] and a.target_to_source.tolist() == [0, -1, 1]
    vm = al.vocab_map
    # "2024" -> "20" (the target's first piece), "20" itself, "<|end|>" nowhere
    assert vm.lookup(np.array([6, 4, 8])).tolist() == [4, 4, -1]
    assert vm.lookup_how(np.array([6, 4, 8, 99, -1])).tolist() == [
        MAP_PREFIX,
        MAP_EXACT,
        MAP_DROPPED,
        MAP_DROPPED,
        MAP_DROPPED,
    ]
    # Row 0 predicts "2024": 0.6 on it, 0.2 on "20", 0.1 on "<|end|>" (0.9 stored);
    # row 1 predicts ".": 0.5 on it, 0.5 on "2024".
    ids = np.array([[6, 4, 8], [3, 6, -1]])
    lps = np.log(np.array([[0.6, 0.2, 0.1], [0.5, 0.5, 1.0]]))
    lps[1, 2] = EMPTY_LOGPROB
    how = vm.lookup_how(ids, a.source_contexts())
    c = count_mass(a.target_to_source, ids, lps, how)
    assert (c.positions, c.anchored) == (3, 2)
    assert c.stored == pytest.approx(1.9)
    exact, prefix, unk, dropped = c.mass
    assert exact == pytest.approx(0.2 / 0.9 + 0.5)
    assert prefix == pytest.approx(0.6 / 0.9 + 0.5)
    assert unk == 0.0 and dropped == pytest.approx(0.1 / 0.9)
    shares = mass_shares(c.positions, c.anchored, c.mass, c.stored)
    assert shares == {
        "positions_aligned": round(2 / 3, 4),
        "exact": round((0.2 / 0.9 + 0.5) / 2, 5),
        "prefix": round((0.6 / 0.9 + 0.5) / 2, 5),
        "unk": 0.0,
        "dropped": round(0.1 / 0.9 / 2, 5),
        "stored_mass": 0.95,
    }
    # Sending the end-of-turn marker to the target's eos keeps its mass, as exact.
    paired = vm.with_pairs({8: tgt.eos_token_id})
    assert paired.lookup(np.array([8])).tolist() == [tgt.eos_token_id]
    c2 = count_mass(a.target_to_source, ids, lps, paired.lookup_how(ids, a.source_contexts()))
    assert c2.mass[MAP_DROPPED] == 0.0
    assert c2.mass[MAP_EXACT] == pytest.approx(exact + dropped)
    assert (vm.lookup(np.array([8])) == -1).all()  # the original map is unchanged
    # The projection keeps exactly the mass the count calls kept.
    proj = al.project(a, ids, lps, policy="skip")
    assert proj.ids[0, :2].tolist() == [4, -1]  # "2024" and "20" both on "20"; "<|end|>" gone
    assert np.exp(proj.logprobs[0, 0]) == pytest.approx(1.0)


def test_count_mass_edge_rows():
    t2s = np.array([-1, 0, 1, 2])
    ids = np.array([[1, 2], [-1, -1], [3, 4]])
    lps = np.array([[0.0, -np.inf], [-np.inf, -np.inf], [np.log(0.25), np.log(0.25)]])
    how = np.array([[MAP_UNK, MAP_EXACT], [MAP_EXACT, MAP_EXACT], [MAP_EXACT, MAP_PREFIX]])
    c = count_mass(t2s, ids, lps, how)
    # row 1 has no stored mass: anchored, but no mass; row 2 is renormalised to 1
    assert (c.positions, c.anchored) == (4, 3)
    assert c.mass.tolist() == pytest.approx([0.5, 0.5, 1.0, 0.0])
    assert c.stored == pytest.approx(1.5)
    empty = count_mass(np.array([-1, -1]), ids, lps, how)
    assert (empty.anchored, float(empty.mass.sum())) == (0, 0.0)
    shares = mass_shares(empty.positions, empty.anchored, empty.mass, empty.stored)
    assert shares["positions_aligned"] == 0.0
    assert all(shares[k] is None for k in (*MAP_KINDS, "stored_mass"))
    assert mass_shares(0, 0, np.zeros(4), 0.0)["positions_aligned"] is None
