"""Vocabulary map and map_topk: properties over random candidates, and each convention."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profuser.align import TokenAligner, build_vocab_map
from profuser.align.chars import CTX_GLUED, CTX_OTHER, CTX_SPACE
from profuser.align.surface import build_token_table
from profuser.align.vocab_map import (
    MAP_DROPPED,
    MAP_EXACT,
    MAP_PREFIX,
    MAP_UNK,
    VocabMap,
    pair_key,
)
from tests.align.conftest import KINDS, SlowLike
from tests.align.reference import surface

PAIRS = list(itertools.permutations(KINDS, 2)) + [(k, k) for k in KINDS]


@pytest.fixture(scope="module")
def aligners(tokenizers):
    return {(a, b): TokenAligner(tokenizers[a], tokenizers[b]) for a, b in PAIRS}


def _tid(tok, token: str) -> int:
    tid = tok.convert_tokens_to_ids(token)
    assert tid is not None and tid != tok.unk_token_id, token
    return tid


def _map(aligners, pair, tokens_or_ids, ctx=CTX_OTHER):
    al = aligners[pair]
    src = al.source
    ids = [t if isinstance(t, int) else _tid(src, t) for t in tokens_or_ids]
    out = al.vocab_map.ids[ctx, ids]
    return [al.target.convert_ids_to_tokens(int(i)) if i >= 0 else None for i in out]


@st.composite
def candidates(draw, v_src: int):
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, 10))
    ids = draw(
        st.lists(
            st.lists(
                st.one_of(
                    st.integers(0, v_src - 1),
                    st.integers(0, v_src - 1),
                    st.just(-1),
                    st.integers(v_src, v_src + 64),
                ),
                min_size=k,
                max_size=k,
            ),
            min_size=n,
            max_size=n,
        )
    )
    logits = draw(
        st.lists(st.lists(st.floats(-20, 20), min_size=k, max_size=k), min_size=n, max_size=n)
    )
    ctx = draw(st.lists(st.sampled_from([CTX_OTHER, CTX_SPACE, CTX_GLUED]), min_size=n, max_size=n))
    ids = np.array(ids, dtype=np.int64)
    lg = np.array(logits, dtype=np.float64)
    lg = np.where(ids >= 0, lg, -np.inf)
    with np.errstate(invalid="ignore"):
        lp = lg - np.logaddexp.reduce(lg, axis=1, keepdims=True)
    lp = np.where(ids >= 0, lp, -np.inf)
    return ids, lp, np.array(ctx, dtype=np.int8)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}->{p[1]}")
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_map_topk_properties(aligners, pair, data):
    al = aligners[pair]
    v_src, v_tgt = al.vocab_map.source_size, len(al.target)
    ids, lp, ctx = data.draw(candidates(v_src))
    for context in (None, ctx):
        out_ids, out_lp = al.map_topk(ids, lp, context)
        assert out_ids.shape == ids.shape and out_lp.shape == ids.shape
        assert np.all((out_ids >= -1) & (out_ids < v_tgt))
        valid = out_ids >= 0
        mass = np.where(valid, np.exp(out_lp.astype(np.float64)), 0.0).sum(axis=1)
        has = valid.any(axis=1)
        assert np.allclose(mass[has], 1.0, atol=1e-5)
        for row_ids, row_valid in zip(out_ids, valid, strict=True):
            kept = row_ids[row_valid]
            assert len(set(kept.tolist())) == len(kept)  # duplicates were merged
            assert not row_valid[np.argmin(row_valid) :].any() if not row_valid.all() else True


def _target_surfaces(tok, kind: str) -> dict[bytes, int]:
    """Test-local surface -> id of ordinary target tokens (word-initial for WordPiece).

    On ties an ordinary token beats a byte-fallback one, then the lower id wins.
    """
    specials = set(tok.all_special_ids) | set(tok.added_tokens_decoder)
    out: dict[bytes, tuple[int, int]] = {}
    for token, tid in tok.get_vocab().items():
        if tid in specials or (kind == "wordpiece" and token.startswith("##")):
            continue
        s = surface(kind, token, False)
        rank = (int(token.startswith("<0x")), tid)
        if s not in out or rank < out[s]:
            out[s] = rank
    return {s: r[1] for s, r in out.items()}


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}->{p[1]}")
def test_exact_string_matches_map_exactly(aligners, tokenizers, pair):
    src_kind, tgt_kind = pair
    src, tgt = tokenizers[src_kind], tokenizers[tgt_kind]
    targets = _target_surfaces(tgt, tgt_kind)
    specials = set(src.all_special_ids) | set(src.added_tokens_decoder)
    vmap = aligners[pair].vocab_map
    n_exact = 0
    for token, sid in src.get_vocab().items():
        if sid in specials or (src_kind == "wordpiece" and token.startswith("##")):
            continue
        s = surface(src_kind, token, False)
        if s in targets:
            n_exact += 1
            assert vmap.ids[CTX_OTHER, sid] == targets[s], (token, s)
            ids, lps = aligners[pair].map_topk(np.array([[sid, -1]]), np.array([[0.0, -np.inf]]))
            assert ids[0, 0] == targets[s] and lps[0, 0] == 0.0
    assert n_exact > 50


@pytest.mark.parametrize("kind", KINDS)
def test_same_tokenizer_maps_onto_itself(aligners, kind):
    al = aligners[(kind, kind)]
    table = al.source_table
    ordinary = np.flatnonzero(table.present & ~table.special & ~table.byte_fallback)
    # In a word (CTX_GLUED) WordPiece "##" pieces are themselves; elsewhere each
    # token is itself except that "##x" outside a word is the word-initial "x".
    glued = al.vocab_map.ids[CTX_GLUED, ordinary]
    assert np.array_equal(glued, ordinary)
    other = al.vocab_map.ids[CTX_OTHER, ordinary]
    same = other == ordinary
    assert same.all() or (kind == "wordpiece" and table.continuation[ordinary[~same]].all())
    fallback = np.flatnonzero(table.byte_fallback)
    for i in fallback:  # <0x41> is "A" when the vocabulary has "A"
        assert table.surfaces[al.vocab_map.ids[CTX_OTHER, i]] == table.surfaces[i]


def test_leading_space_markers_translate(aligners):
    assert _map(aligners, ("byte_bpe", "metaspace_bpe"), ["Ġthe", "Ġcapital"]) == [
        "▁the",
        "▁capital",
    ]
    assert _map(aligners, ("metaspace_bpe", "byte_bpe"), ["▁the", "▁capital"]) == [
        "Ġthe",
        "Ġcapital",
    ]
    assert _map(aligners, ("byte_bpe", "wordpiece"), ["Ġthe", "Ġcapital"]) == ["the", "capital"]
    assert _map(aligners, ("metaspace_bpe", "wordpiece"), ["▁the"]) == ["the"]


def test_wordpiece_words_depend_on_context(aligners):
    pair = ("wordpiece", "byte_bpe")
    assert _map(aligners, pair, ["the"], CTX_SPACE) == ["Ġthe"]
    assert _map(aligners, pair, ["capital"], CTX_SPACE) == ["Ġcapital"]
    other = _map(aligners, pair, ["capital"], CTX_OTHER)[0]
    assert not other.startswith("Ġ") and "capital".startswith(other)
    # Inside a word a WordPiece target answers with "##" pieces.
    tgt_pair = ("byte_bpe", "wordpiece")
    assert _map(aligners, tgt_pair, ["s"], CTX_GLUED) == ["##s"]
    assert _map(aligners, tgt_pair, ["s"], CTX_OTHER) == ["s"]
    assert _map(aligners, tgt_pair, ["Ġthe"], CTX_GLUED) == ["the"]  # a space starts a word
    # WordPiece lower-cases: "The" reaches the same token as "the".
    assert _map(aligners, tgt_pair, ["ĠThe"]) == _map(aligners, tgt_pair, ["Ġthe"])


def test_byte_pieces_and_byte_fallback(aligners, tokenizers):
    # "é" = C3 A9: byte-level pieces <-> byte-fallback tokens, both ways.
    assert _map(aligners, ("byte_bpe", "metaspace_bpe"), ["Ã", "©"]) == ["<0xC3>", "<0xA9>"]
    back = _map(aligners, ("metaspace_bpe", "byte_bpe"), ["<0xC3>", "<0xA9>", "<0x0A>"])
    assert back == ["Ã", "©", "Ċ"]
    # A byte fallback token for a character the vocabulary also has maps to that token.
    assert _map(aligners, ("metaspace_bpe", "metaspace_bpe"), ["<0x41>"]) == ["A"]
    # Partial UTF-8 cannot be spelled by WordPiece: its unk token.
    assert _map(aligners, ("byte_bpe", "wordpiece"), ["Ã"]) == ["[UNK]"]


def test_whitespace_into_wordpiece_has_no_target(aligners):
    assert _map(aligners, ("byte_bpe", "wordpiece"), ["Ċ", "Ġ"]) == [None, None]
    ids, lps = aligners[("byte_bpe", "wordpiece")].map_topk(
        np.array(
            [
                [
                    _tid(aligners[("byte_bpe", "wordpiece")].source, "Ċ"),
                    _tid(aligners[("byte_bpe", "wordpiece")].source, "Ġthe"),
                ]
            ]
        ),
        np.log(np.array([[0.7, 0.3]])),
    )
    assert ids[0, 0] >= 0 and ids[0, 1] == -1 and abs(lps[0, 0]) < 1e-6


def test_longest_prefix(aligners, tokenizers):
    al = aligners[("byte_bpe", "metaspace_bpe")]
    tgt_surfaces = _target_surfaces(tokenizers["metaspace_bpe"], "metaspace_bpe")
    checked = 0
    for token, sid in tokenizers["byte_bpe"].get_vocab().items():
        if sid in tokenizers["byte_bpe"].all_special_ids:
            continue
        s = surface("byte_bpe", token, False)
        if s in tgt_surfaces:
            continue
        tid = int(al.vocab_map.ids[CTX_OTHER, sid])
        best = max((p for p in range(1, len(s)) if s[:p] in tgt_surfaces), default=0)
        assert tid == tgt_surfaces[s[:best]], token
        checked += 1
    assert checked > 10


def test_special_tokens(aligners, tokenizers):
    bb, ms, wp = (tokenizers[k] for k in KINDS)
    vm = aligners[("byte_bpe", "wordpiece")].vocab_map.ids[CTX_OTHER]
    assert vm[bb.eos_token_id] == wp.eos_token_id
    assert vm[bb.bos_token_id] == wp.bos_token_id
    assert vm[bb.pad_token_id] == wp.pad_token_id
    vm = aligners[("metaspace_bpe", "byte_bpe")].vocab_map.ids[CTX_OTHER]
    assert vm[ms.eos_token_id] == bb.eos_token_id
    # chatml's <|im_end|> has no counterpart in byte_bpe (and no unk there): dropped.
    assert vm[ms.convert_tokens_to_ids("<|im_end|>")] == -1
    vm = aligners[("metaspace_bpe", "wordpiece")].vocab_map.ids[CTX_OTHER]
    assert vm[ms.convert_tokens_to_ids("<|im_end|>")] == wp.unk_token_id
    assert vm[ms.unk_token_id] == wp.unk_token_id


def test_ids_past_the_tokenizer_are_dropped(aligners):
    al = aligners[("byte_bpe", "metaspace_bpe")]
    v = al.vocab_map.source_size
    the = _tid(al.source, "Ġthe")
    ids, lps = al.map_topk(np.array([[the, v + 5, v + 60]]), np.log(np.array([[0.2, 0.5, 0.3]])))
    assert ids.tolist() == [[_tid(al.target, "▁the"), -1, -1]]
    assert abs(lps[0, 0]) < 1e-6 and np.isneginf(lps[0, 1:]).all()


def test_duplicates_are_summed(aligners):
    al = aligners[("byte_bpe", "wordpiece")]
    a, b, c = (_tid(al.source, t) for t in ("Ġthe", "ĠThe", "Ġcapital"))
    ids, lps = al.map_topk(np.array([[a, c, b]]), np.log(np.array([[0.25, 0.5, 0.25]])))
    the, cap = _tid(al.target, "the"), _tid(al.target, "capital")
    probs = dict(zip(ids[0].tolist(), np.exp(lps[0]).tolist(), strict=True))
    assert ids[0, 2] == -1
    assert probs[the] == pytest.approx(0.5) and probs[cap] == pytest.approx(0.5)


def test_token_tables_detect_conventions(tokenizers):
    expected = {
        "byte_bpe": ("byte_level", False),
        "metaspace_bpe": ("metaspace", False),
        "wordpiece": ("wordpiece", True),
    }
    for kind, tok in tokenizers.items():
        fast, slow = build_token_table(tok), build_token_table(SlowLike(tok))
        assert (fast.kind, fast.lowercase) == expected[kind]
        assert fast.strip_accents == (kind == "wordpiece")
        assert (slow.kind, slow.lowercase, slow.size) == (fast.kind, fast.lowercase, fast.size)
        assert fast.surfaces == slow.surfaces
        assert fast.drops_whitespace == (kind == "wordpiece")


def test_cache_roundtrip_and_key(tokenizers, tmp_path, monkeypatch):
    src, tgt = tokenizers["byte_bpe"], tokenizers["metaspace_bpe"]
    first = build_vocab_map(src, tgt, cache=tmp_path)
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f"{first.key}.npy"]

    def boom(*a, **k):
        raise AssertionError("rebuilt instead of loaded")

    monkeypatch.setattr("profuser.align.vocab_map.build_map_from_tables", boom)
    again = build_vocab_map(src, tgt, cache=tmp_path)
    assert np.array_equal(first.ids, again.ids)
    assert np.array_equal(first.how, again.how) and again.how.dtype == np.int8
    monkeypatch.undo()
    # Damaged entries are rebuilt; direction and contents change the key.
    files[0].write_bytes(b"not a numpy file")
    assert np.array_equal(build_vocab_map(src, tgt, cache=tmp_path).ids, first.ids)
    assert pair_key(src, tgt) != pair_key(tgt, src)
    grown = SlowLike(src)
    assert pair_key(grown, tgt) != pair_key(src, tgt)  # no backend: keyed by the vocabulary
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]


def test_cache_defaults_to_profuser_cache(tokenizers, tmp_path, monkeypatch):
    monkeypatch.setenv("PROFUSER_CACHE", str(tmp_path))
    vm = build_vocab_map(tokenizers["wordpiece"], tokenizers["byte_bpe"])
    assert (tmp_path / "vocab_maps" / f"{vm.key}.npy").exists()
    none = tmp_path / "none"
    monkeypatch.setenv("PROFUSER_CACHE", str(none))
    build_vocab_map(tokenizers["wordpiece"], tokenizers["byte_bpe"], cache=False)
    assert not none.exists()


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}->{p[1]}")
def test_each_entry_says_how_it_was_reached(aligners, pair):
    al = aligners[pair]
    vm, src, tgt = al.vocab_map, al.source_table, al.target_table
    assert vm.how.shape == vm.ids.shape
    assert np.array_equal(vm.how == MAP_DROPPED, vm.ids < 0)
    if tgt.unk_id >= 0:
        assert (vm.ids[vm.how == MAP_UNK] == tgt.unk_id).all()
    if "wordpiece" in pair:
        return  # spaces and folding: covered by the WordPiece cases below
    ordinary = np.flatnonzero(src.present & ~src.special)
    for sid in ordinary.tolist():
        how, tid = vm.how[CTX_OTHER, sid], vm.ids[CTX_OTHER, sid]
        s, t = src.surfaces[sid], tgt.surfaces[tid] if tid >= 0 else None
        if how == MAP_EXACT:
            assert t == s, sid
        elif how == MAP_PREFIX:
            assert len(t) < len(s) and s.startswith(t), sid


def test_kinds_of_the_conventions(aligners):
    def how(pair, tokens, ctx=CTX_OTHER):
        al = aligners[pair]
        return [int(al.vocab_map.how[ctx, _tid(al.source, t)]) for t in tokens]

    bb_ms, bb_wp = ("byte_bpe", "metaspace_bpe"), ("byte_bpe", "wordpiece")
    assert how(bb_ms, ["Ġthe", "Ã"]) == [MAP_EXACT, MAP_EXACT]
    assert how(bb_wp, ["Ġthe", "ĠThe"]) == [MAP_EXACT, MAP_EXACT]  # spaces and case folded away
    assert how(bb_wp, ["Ċ", "Ġ", "Ã"]) == [MAP_DROPPED, MAP_DROPPED, MAP_UNK]
    assert how(("wordpiece", "byte_bpe"), ["the"], CTX_SPACE) == [MAP_EXACT]  # " the"
    ms_bb, ms_wp = ("metaspace_bpe", "byte_bpe"), ("metaspace_bpe", "wordpiece")
    assert how(ms_bb, ["<|im_end|>", "</s>"]) == [MAP_DROPPED, MAP_EXACT]
    assert how(ms_wp, ["<|im_end|>"]) == [MAP_UNK]
    unk = aligners[ms_wp].source.unk_token_id  # unk -> unk by role
    assert aligners[ms_wp].vocab_map.how[CTX_OTHER, unk] == MAP_EXACT


def test_punctuation_inside_a_word_starts_a_wordpiece_word(aligners):
    """ "Paris" + "." : BERT's pre-tokenizer splits before ".", so the target's own token
    there is the word-initial "."; it used to be "[UNK]" (no "##." piece)."""
    for src in ("byte_bpe", "metaspace_bpe"):
        al = aligners[(src, "wordpiece")]
        dot = _tid(al.source, ".")
        assert al.vocab_map.ids[CTX_GLUED, dot] == _tid(al.target, ".")
        assert al.vocab_map.how[CTX_GLUED, dot] == MAP_EXACT
    assert _map(aligners, ("byte_bpe", "wordpiece"), ["s"], CTX_GLUED) == ["##s"]


def test_pairs_override_every_context():
    ids = np.array([[0, 1, -1]] * 3, dtype=np.int32)
    vm = VocabMap(ids=ids, target_size=4)
    assert vm.how.tolist() == [[MAP_EXACT, MAP_EXACT, MAP_DROPPED]] * 3
    paired = vm.with_pairs({2: 3, 0: 9, 7: 1})  # out-of-range entries are ignored
    assert paired.ids.tolist() == [[0, 1, 3]] * 3
    assert (paired.how[:, 2] == MAP_EXACT).all() and (vm.ids[:, 2] == -1).all()
    assert paired.lookup_how(np.array([[2, 5, -1]]), np.array([1])).tolist() == [
        [MAP_EXACT, MAP_DROPPED, MAP_DROPPED]
    ]
