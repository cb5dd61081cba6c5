"""Tokenizers of three different kinds, trained on the tiny world's own text.

* ``byte_bpe``: byte-level BPE (``Ġ`` marks a leading space), like Llama-3/GPT-2.
* ``metaspace_bpe``: SentencePiece-style BPE (``▁`` marks a leading space) with byte
  fallback (``<0x..>`` tokens), like Llama-2.
* ``wordpiece``: BERT-style WordPiece (``##`` continuation, lower-casing normaliser).
* ``digit_byte_bpe``: byte-level BPE behind an NFC normaliser and a split regex that keeps
  every digit a token of its own, like Qwen2 (the extended world's qwen2-like).
* ``gemma_bpe``: SentencePiece-style BPE with byte fallback used without a pre-tokeniser
  (the normaliser turns spaces into ``▁``; single digits), like Gemma (gemma-like).

Each comes back as a `PreTrainedTokenizerFast` with bos/eos/pad tokens (and any
extra special tokens, e.g. chatml's) so that it can be saved with
`save_pretrained` and loaded back with `AutoTokenizer`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

TOKENIZER_KINDS = ("byte_bpe", "metaspace_bpe", "wordpiece", "digit_byte_bpe", "gemma_bpe")
# Qwen2's split: contractions, letter runs, one digit at a time, other symbols, whitespace.
DIGIT_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

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
    "digit_byte_bpe": {
        "bos_token": "<|bos|>",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|pad|>",
    },
    "gemma_bpe": {
        "pad_token": "<pad>",
        "eos_token": "<eos>",
        "bos_token": "<bos>",
        "unk_token": "<unk>",
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


def _byte_level_bpe(
    texts: list[str],
    vocab_size: int,
    specials: list[str],
    pre: pre_tokenizers.PreTokenizer,
    norm: normalizers.Normalizer | None = None,
) -> Tokenizer:
    """Byte-level BPE (every byte in the initial alphabet) behind ``pre`` and ``norm``."""
    tok = Tokenizer(models.BPE())
    if norm is not None:
        tok.normalizer = norm
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def _train_with_byte_fallback(
    tok: Tokenizer, texts: list[str], vocab_size: int, specials: list[str]
) -> Tokenizer:
    """Train the BPE ``tok`` to leave room for the 256 byte tokens, then append them."""
    trainer = trainers.BpeTrainer(
        vocab_size=max(vocab_size - 256, len(specials) + 64),
        special_tokens=specials,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return _add_byte_fallback(tok)


def _gemma_bpe(texts: list[str], vocab_size: int, specials: list[str], unk: str) -> Tokenizer:
    """Gemma's pipeline: spaces become ``▁`` in the normaliser and no pre-tokeniser splits
    the text. Merges are learnt on ``▁``-led words and single digits (SentencePiece keeps
    pieces inside a word and splits digits), then the pre-tokeniser used for training is
    removed, so the tokenizer runs as Gemma's does, on the whole normalised text."""
    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never"),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    tok = _train_with_byte_fallback(tok, texts, vocab_size, specials)
    spec = json.loads(tok.to_str())
    spec["pre_tokenizer"] = None
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    return tok


def _wordpiece_vocab(
    texts: list[str], norm, pre, vocab_size: int, specials: list[str]
) -> dict[str, int]:
    """A WordPiece vocabulary learned by BPE-style merges with deterministic tie-breaking.

    (`tokenizers`' WordPieceTrainer breaks frequency ties differently from run to
    run, which would make rebuilt worlds differ.)
    """
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
    words = {w: [w[0], *("##" + c for c in w[1:])] for w in counts}
    vocab = list(dict.fromkeys([*specials, *sorted({p for ps in words.values() for p in ps})]))
    while len(vocab) < vocab_size:
        pairs: Counter[tuple[str, str]] = Counter()
        for w, parts in words.items():
            for a, b in zip(parts, parts[1:], strict=False):
                pairs[(a, b)] += counts[w]
        if not pairs:
            break
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        merged = a + b.removeprefix("##")
        vocab.append(merged)
        for w, parts in words.items():
            i, out = 0, []
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            words[w] = out
    return {t: i for i, t in enumerate(vocab)}


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
        pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok = _byte_level_bpe(texts, vocab_size, special_list, pre)
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
        tok = _train_with_byte_fallback(tok, texts, vocab_size, special_list)
    elif kind == "digit_byte_bpe":
        pre = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(DIGIT_SPLIT), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tok = _byte_level_bpe(texts, vocab_size, special_list, pre, normalizers.NFC())
    elif kind == "gemma_bpe":
        tok = _gemma_bpe(texts, vocab_size, special_list, specials["unk_token"])
    else:
        norm = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
        pre = pre_tokenizers.BertPreTokenizer()
        vocab = _wordpiece_vocab(texts, norm, pre, vocab_size, special_list)
        tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token=specials["unk_token"]))
        tok.normalizer = norm
        tok.pre_tokenizer = pre
        tok.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        additional_special_tokens=list(extra_special_tokens) or None,
        **specials,
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast
