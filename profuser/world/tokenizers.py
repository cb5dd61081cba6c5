"""Tokenizers of three different kinds, trained on the tiny world's own text.

* ``byte_bpe``: byte-level BPE (``Ġ`` marks a leading space), like Llama-3/GPT-2.
* ``metaspace_bpe``: SentencePiece-style BPE (``▁`` marks a leading space) with byte
  fallback (``<0x..>`` tokens), like Llama-2.
* ``wordpiece``: BERT-style WordPiece (``##`` continuation, lower-casing normaliser).

Each comes back as a `PreTrainedTokenizerFast` with bos/eos/pad tokens (and any
extra special tokens, e.g. chatml's) so that it can be saved with
`save_pretrained` and loaded back with `AutoTokenizer`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

TOKENIZER_KINDS = ("byte_bpe", "metaspace_bpe", "wordpiece")

_SPECIALS = {
    "byte_bpe": {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"},
    "metaspace_bpe": {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
    },
    "wordpiece": {
        "bos_token": "[BOS]",
        "eos_token": "[EOS]",
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
    },
}


def _add_byte_fallback(tok: Tokenizer) -> Tokenizer:
    """Append the 256 ``<0xNN>`` tokens to a trained BPE vocabulary and enable byte fallback."""
    spec = json.loads(tok.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    for b in range(256):
        name = f"<0x{b:02X}>"
        if name not in vocab:
            vocab[name] = len(vocab)
    spec["model"]["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(spec))


def build_tokenizer(
    kind: str,
    texts: Iterable[str],
    vocab_size: int,
    extra_special_tokens: tuple[str, ...] = (),
    chat_template: str | None = None,
) -> PreTrainedTokenizerFast:
    """Train a tokenizer of ``kind`` on ``texts`` (deterministic for the same input)."""
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {TOKENIZER_KINDS}")
    specials = _SPECIALS[kind]
    special_list = list(dict.fromkeys([*specials.values(), *extra_special_tokens]))
    texts = list(texts)
    if kind == "byte_bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=special_list,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer)
    elif kind == "metaspace_bpe":
        tok = Tokenizer(models.BPE(unk_token=specials["unk_token"]))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Sequence(
            [
                decoders.Replace("▁", " "),
                decoders.ByteFallback(),
                decoders.Fuse(),
                decoders.Strip(" ", 1, 0),
            ]
        )
        # Leave room for the 256 byte tokens appended below.
        trainer = trainers.BpeTrainer(
            vocab_size=max(vocab_size - 256, len(special_list) + 64),
            special_tokens=special_list,
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer)
        tok = _add_byte_fallback(tok)
    else:
        tok = Tokenizer(models.WordPiece(unk_token=specials["unk_token"]))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=special_list, show_progress=False
        )
        tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        additional_special_tokens=list(extra_special_tokens) or None,
        **specials,
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast
