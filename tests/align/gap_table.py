"""Worst coverage gap and wrong pairs per ordered pair of tokenizer families.

``python -m tests.align.gap_table [n_texts]`` prints the table over seeded texts drawn
like the property tests' (`tests.align.strategies.family_texts`).
"""

from __future__ import annotations

import itertools
import random
import sys

from profuser.align import TokenAligner
from tests.align.families import FAMILIES, STYLES, VARIANTS, family_tokenizer
from tests.align.reference import char_reference, score_alignment
from tests.align.strategies import sample_family_texts

PAIRS = list(itertools.permutations(FAMILIES, 2))
VARIANT_PAIRS = [p for v in VARIANTS for f in FAMILIES for p in ((v, f), (f, v))]


def gap_stats(texts: list[str], pairs=PAIRS):
    """(source, target) -> (wrong pairs in all, worst gap, the text with the worst gap)."""
    names = sorted({f for pair in pairs for f in pair})
    toks = {f: family_tokenizer(f) for f in names}
    refs = {f: [char_reference(toks[f], STYLES[f], t) for t in texts] for f in names}
    out = {}
    for src, tgt in pairs:
        aligner = TokenAligner(toks[src], toks[tgt], cache=False)
        wrong, worst, worst_text = 0, 0.0, ""
        for k, text in enumerate(texts):
            al = aligner.align(text)
            _, s_start, s_piece = refs[src][k]
            t_ids, t_start, t_piece = refs[tgt][k]
            assert al.target_ids.tolist() == t_ids
            w, missed = score_alignment(
                al.target_to_source.tolist(), (s_start, s_piece), (t_start, t_piece)
            )
            wrong += w
            gap = missed / max(len(t_ids), 1)
            if gap > worst:
                worst, worst_text = gap, text
        out[(src, tgt)] = (wrong, worst, worst_text)
    return out


def main(n: int = 300, variants: int = 0) -> None:
    texts = sample_family_texts(random.Random(0), n)
    stats = gap_stats(texts, VARIANT_PAIRS if variants else PAIRS)
    print(f"{'source':>8} -> {'target':<8} {'wrong':>6} {'worst gap':>10}  worst text")
    for (src, tgt), (wrong, worst, text) in stats.items():
        print(f"{src:>8} -> {tgt:<8} {wrong:>6} {100 * worst:>9.1f}%  {text[:60]!r}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
