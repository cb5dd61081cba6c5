"""Hypothesis strategies: random text with unicode, whitespace runs and special tokens."""

from __future__ import annotations

from hypothesis import strategies as st

WORDS = [
    "The",
    "capital",
    "of",
    "France",
    "is",
    "Paris",
    "answer",
    "We",
    "count",
    "7",
    "42",
    "3.5",
    "don't",
    "café",
    "naïve",
    "ÉCLAIR",
    "Ünïcödé",
    "中文",
    "日本語",
    "한국어",
    "😀",
    "👍🏽",
    "🎉",
    "½",
    "—",
    "“quoted”",
    "<|im_end|>",
    "<|im_start|>",
    "</s>",
    "[BOS]",
    "e\u0301",
    "ﬁ",
]
SEPARATORS = ["", " ", " ", " ", "  ", "   ", "\n", "\n\n", "\t", " \n ", "\u3000", "\xa0"]

random_chars = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x1FAFF),
    min_size=1,
    max_size=5,
)
piece = st.one_of(st.sampled_from(WORDS), st.sampled_from(WORDS), random_chars)
texts = st.lists(st.tuples(piece, st.sampled_from(SEPARATORS)), max_size=24).map(
    lambda parts: "".join(w + s for w, s in parts)
)
