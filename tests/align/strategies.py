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


# --- Text for the tokenizer families (`tests.align.families`) ---------------------------

SPECIAL_WORDS = [
    "<s>", "</s>", "<unk>", "<pad>", "<bos>", "<eos>", "<start_of_turn>", "<|im_start|>",
    "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|eot_id|>", "[CLS]", "[SEP]",
    "[UNK]", "[MASK]", "<extra_id_0>", "<0x41>",
]  # fmt: skip
MARKS = ["\u0301", "\u0300", "\u0308", "\u0327", "\u0303", "\u20dd", "\u0336", "\u0489"]
FAMILY_SEPARATORS = [*SEPARATORS, "    ", "\n\n\n", "\t\t", " \u3000", "\u2003", "\r\n"]


def _pools() -> list[list[str]]:
    from tests.align.families import ACCENTED, CJK, CODE, COMPAT, DIGITS, EMOJI, PROSE

    prose = PROSE + [w.capitalize() for w in PROSE] + WORDS
    emoji = EMOJI + ["👩\u200d💻", "🏳️\u200d🌈", "🤷\u200d♂️", "1️⃣", "🇯🇵"]
    return [prose, prose, ACCENTED, CJK, emoji, COMPAT, DIGITS, CODE, SPECIAL_WORDS]


@st.composite
def _marked(draw: st.DrawFn) -> str:
    """A letter (or CJK, digit, space) carrying one to three combining marks."""
    base = draw(st.sampled_from(list("aeiouAEIOUnczx7 中ﬁ")))
    return base + "".join(draw(st.lists(st.sampled_from(MARKS), min_size=1, max_size=3)))


def family_piece() -> st.SearchStrategy[str]:
    pools = [st.sampled_from(p) for p in _pools()]
    return st.one_of(*pools, _marked(), random_chars)


family_texts = st.lists(
    st.tuples(family_piece(), st.sampled_from(FAMILY_SEPARATORS)), min_size=1, max_size=16
).map(lambda parts: "".join(w + s for w, s in parts))


def sample_family_texts(rng, n: int) -> list[str]:
    """``n`` texts drawn like `family_texts` with a seeded ``random.Random``."""
    pools = _pools()
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 16)):
            kind = rng.randrange(len(pools) + 2)
            if kind < len(pools):
                word = rng.choice(pools[kind])
            elif kind == len(pools):
                word = rng.choice("aeiouAEIOUnczx7 中ﬁ")
                word += "".join(rng.choice(MARKS) for _ in range(rng.randint(1, 3)))
            else:
                word = "".join(chr(_random_codepoint(rng)) for _ in range(rng.randint(1, 5)))
            parts.append(word + rng.choice(FAMILY_SEPARATORS))
        out.append("".join(parts))
    return out


def _random_codepoint(rng) -> int:
    while True:
        c = rng.randint(0x20, 0x1FAFF)
        if not 0xD800 <= c < 0xE000:
            return c
