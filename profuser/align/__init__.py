"""Cross-tokenizer alignment: positions by character anchors, vocabularies by surface text.

The response text is the same string under every tokenizer, so two
tokenizations are aligned exactly by where their tokens start in it:

* **Positions** (`TokenAligner.align`). Each token gets an *anchor*, the first
  non-whitespace character of its span ("Ġfoo", "▁foo" and "foo" all start at
  "f"), as a byte offset into the UTF-8 text so that the byte pieces of one
  character keep one anchor each (rules in `profuser.align.spans`).
  Target token j is aligned to the source token with the same anchor, else -1;
  one vectorised merge of the two anchor arrays, O(n + m). Where each token
  lies comes, cheapest first, from the token bytes themselves when they spell
  the text exactly (byte-level and byte-fallback tokenizers), from a fast
  tokenizer's offset mapping (which traces normalised text back to the
  original), or, for slow tokenizers, from a linear walk over the token
  strings against the text as the tokenizer's normaliser writes it. Tokens a
  normaliser wrote for one character ("ﬁ" -> "f" "i") start at it once.
* **Vocabularies** (`build_vocab_map`, `TokenAligner.map_topk`). A source token
  goes to the target token the target would emit first for the text it stands
  for (exact match, else longest target-vocabulary prefix, on bytes); built
  once per pair with hash lookups, O(|V_s| * token length), and cached on disk
  under ``$PROFUSER_CACHE/vocab_maps`` keyed by both tokenizers' contents.
* **Next-token convention** (`project_to_target`). Row i of a stored top-k
  distribution predicts token i of the response (it is the model's output one
  position earlier). Target token j therefore takes the source row of the
  source token that starts where j starts: both rows predict the text from that
  character on. Positions without one follow an `UNALIGNED_POLICIES` entry
  (``onehot_gt``: all mass on the target's own token; ``skip``: no KL there).

Typical use in the align stage, a batch of answers at a time (each side encoded
in one batch call of the fast tokenizer, offsets only where they are read)::

    aligner = TokenAligner(source_tok, target_tok)
    src_ids = aligner.encode(answers, "source")  # tokenizer(answer)'s ids, per answer
    tgt_ids = aligner.encode(answers, "target")
    for al, (topk_ids, topk_logprobs) in zip(aligner.align_batch(answers, src_ids, tgt_ids), ...):
        proj = aligner.project(al, topk_ids, topk_logprobs, policy=cfg.advantage.unaligned)
        # proj.ids / proj.logprobs: [n_t, k]; proj.mask: [n_t]

``aligner.align(text, source_ids=..., target_ids=...)`` does the same for one text.
"""

from profuser.align.aligner import Alignment, TokenAligner, match_anchors
from profuser.align.project import UNALIGNED_POLICIES, Projection, project_to_target
from profuser.align.topk import EMPTY_LOGPROB, merge_topk
from profuser.align.vocab_map import VocabMap, build_vocab_map, default_cache_dir

__all__ = [
    "EMPTY_LOGPROB",
    "UNALIGNED_POLICIES",
    "Alignment",
    "Projection",
    "TokenAligner",
    "VocabMap",
    "build_vocab_map",
    "default_cache_dir",
    "match_anchors",
    "merge_topk",
    "project_to_target",
]
