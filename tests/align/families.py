"""Small offline tokenizers with the pipelines of the real model families.

Each family is trained here with `tokenizers` on a seeded corpus (prose, accents in
composed and decomposed form, CJK, emoji, full-width and compatibility characters,
ligatures, digits, code, whitespace runs) and wrapped as a `PreTrainedTokenizerFast`,
the class the pipeline loads real tokenizers into. The pipelines follow the
families' `tokenizer.json` files:

=========  ===================================  ==========================================
family     normaliser / pre-tokeniser            model, decoder, added tokens
=========  ===================================  ==========================================
llama2     Prepend("▁"), Replace(" ", "▁") / -  BPE with byte fallback; Replace, ByteFallback,
           (Llama-2, Mistral)                   Fuse, Strip; <unk> <s> </s>
llama3     - / Split(regex, isolated),          byte-level BPE; ByteLevel;
           ByteLevel(no regex)                  <|begin_of_text|> <|end_of_text|> <|eot_id|>
qwen2      NFC / Split(regex, one digit),       byte-level BPE; ByteLevel;
           ByteLevel(no regex)                  <|endoftext|> <|im_start|> <|im_end|>
t5         NFKC, Replace(" {2,}", " ") /        Unigram with <unk> (no CJK, emoji, braces);
           WhitespaceSplit, Metaspace(always)   Metaspace; <pad> </s> <unk> <extra_id_0>
bert       BertNormalizer(lowercase, accents) / WordPiece; WordPiece;
           BertPreTokenizer                     [PAD] [UNK] [CLS] [SEP] [MASK]
neox       NFC / ByteLevel(GPT-2 regex)          byte-level BPE, offsets trimmed; ByteLevel;
           (GPT-NeoX, Pythia)                   <|endoftext|> <|padding|>, runs of spaces
gemma      Replace(" ", "▁") / -                BPE with byte fallback, single digits;
           (no whitespace pre-split)            Replace, ByteFallback, Fuse;
                                                <pad> <eos> <bos> <unk> <start_of_turn> ...
=========  ===================================  ==========================================

``STYLES`` says how each family spells text in its tokens, for the reference
(`tests.align.reference.char_reference`), which reads tokens without `profuser.align`.
"""

from __future__ import annotations

import json
import random
from functools import cache

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, processors, trainers
from tokenizers import pre_tokenizers as pre
from transformers import PreTrainedTokenizerFast

FAMILIES = ("llama2", "llama3", "qwen2", "t5", "bert", "neox", "gemma")
STYLES = {
    "llama2": "metaspace",
    "llama3": "byte_level",
    "qwen2": "byte_level",
    "t5": "metaspace",
    "bert": "wordpiece",
    "neox": "byte_level",
    "gemma": "metaspace",
}
_LETTERS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+"
_REST = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
LLAMA3_SPLIT = _LETTERS + r"|\p{N}{1,3}" + _REST
QWEN2_SPLIT = _LETTERS + r"|\p{N}" + _REST

PROSE = (
    "the capital of France is Paris and we count seven steps from three to ten . "
    "a model answers the question with a short explanation , then it checks the result "
    "while the others read every line of the report before they write their own notes"
).split()
ACCENTED = [
    "café", "naïve", "façade", "crème", "brûlée", "Ångström", "São", "Zürich", "Dvořák",
    "Łódź", "İstanbul", "ÉCLAIR", "Ünïcödé", "cafe\u0301", "nai\u0308ve", "Cre\u0300me",
    "résumé", "ñandú", "œuvre", "Straße",
]  # fmt: skip
CJK = ["中文", "日本語のテキスト", "한국어", "東京", "你好，世界。", "漢字", "カタカナ", "ひらがな"]
EMOJI = ["😀", "👍🏽", "🎉", "👨\u200d👩\u200d👧", "🇫🇷", "❤️", "🧬", "✨"]
COMPAT = [
    "ﬁnd", "ﬂow", "oﬀer", "①", "②", "㎏", "㎡", "™", "½", "x²", "℃", "Ⅻ", "ＡＢＣ", "１２３",
    "！", "ｶﾀｶﾅ", "…", "ℌ", "㈱", "ǅ",
]  # fmt: skip
CODE = [
    "def f(x):\n    return x ** 2\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    '{"id": 42, "tags": ["a", "b"], "ok": true}',
    "if x == 3.14:\n\tprint('pi')\n",
    "SELECT name FROM users WHERE age >= 18;",
    "x_1 = y^2 - z/3 # note",
]
DIGITS = ["7", "42", "3.5", "1234", "2024-05-01", "10,000", "0.001", "99%"]
SPACES = [" "] * 8 + ["  ", "   ", "\n", "\n\n", "\t", " \n ", "\u3000", "\xa0"]


def corpus(n: int = 300, seed: int = 0) -> list[str]:
    """``n`` seeded lines mixing every kind of text the property tests draw."""
    rng = random.Random(seed)
    pools = (PROSE, PROSE, PROSE, ACCENTED, CJK, EMOJI, COMPAT, DIGITS)
    out = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(6, 24)):
            words.append(rng.choice(rng.choice(pools)))
            words.append(rng.choice(SPACES))
        if rng.random() < 0.3:
            words.append(rng.choice(CODE))
        out.append("".join(words).strip())
    return out


def _byte_fallback(tok: Tokenizer) -> Tokenizer:
    """Append the 256 ``<0xNN>`` tokens to a BPE vocabulary and turn byte fallback on."""
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    spec["model"]["byte_fallback"] = True
    spec["model"]["fuse_unk"] = True
    return Tokenizer.from_str(json.dumps(spec))


def _with_pipeline(tok: Tokenizer, **parts: object) -> Tokenizer:
    """``tok`` with its normaliser / pre-tokeniser replaced (None removes one)."""
    spec = json.loads(tok.to_str())
    for key, value in parts.items():
        spec[key] = None if value is None else json.loads(value.__getstate__())
    return Tokenizer.from_str(json.dumps(spec))


def _train_bpe(lines: list[str], tok: Tokenizer, size: int, specials: list[str], **kw) -> None:
    trainer = trainers.BpeTrainer(
        vocab_size=size, special_tokens=specials, show_progress=False, **kw
    )
    tok.train_from_iterator(lines, trainer)


def _sentencepiece_bpe(lines: list[str], size: int, specials: list[str], prepend: bool):
    """Llama-2 / Gemma: trained on ``▁``-prefixed words, used without a pre-tokeniser."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    steps = [normalizers.Replace(" ", "▁")]
    if prepend:
        steps.insert(0, normalizers.Prepend("▁"))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre.Sequence(
        [pre.Metaspace(prepend_scheme="never"), pre.Digits(individual_digits=True)]
    )
    _train_bpe(lines, tok, size, specials)
    tok = _with_pipeline(_byte_fallback(tok), pre_tokenizer=None)
    steps = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    tok.decoder = decoders.Sequence(steps + [decoders.Strip(" ", 1, 0)] if prepend else steps)
    return tok


def _byte_level(lines: list[str], size: int, specials: list[str], split: str | None, nfc: bool):
    """Llama-3 / Qwen2 (``split`` regex, then bytes) and GPT-NeoX (GPT-2's own regex)."""
    tok = Tokenizer(models.BPE())
    if nfc:
        tok.normalizer = normalizers.NFC()
    if split is None:
        tok.pre_tokenizer = pre.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
    else:
        tok.pre_tokenizer = pre.Sequence(
            [
                pre.Split(Regex(split), behavior="isolated"),
                pre.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    tok.decoder = decoders.ByteLevel()
    _train_bpe(lines, tok, size, specials, initial_alphabet=pre.ByteLevel.alphabet())
    return tok


def _t5(lines: list[str], size: int, specials: list[str]) -> Tokenizer:
    """Unigram over NFKC text; the vocabulary lacks CJK, emoji and braces (``<unk>``)."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre.Sequence(
        [pre.WhitespaceSplit(), pre.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")

    def known(ch: str) -> bool:
        return ord(ch) < 0x2E80 and ch not in "{}" and not 0x2600 <= ord(ch) < 0x2800

    kept = ["".join(c for c in line if known(c)) for line in lines]
    trainer = trainers.UnigramTrainer(
        vocab_size=size, special_tokens=specials, unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(kept, trainer)
    return tok


def _bert(lines: list[str], size: int, specials: list[str]) -> Tokenizer:
    """WordPiece over BERT's lower-casing, accent-stripping normaliser (vocabulary by BPE)."""
    norm = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    split = pre.BertPreTokenizer()
    learner = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
    learner.normalizer, learner.pre_tokenizer = norm, split
    _train_bpe(lines, learner, size, specials, continuing_subword_prefix="##")
    vocab = learner.get_vocab()
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer, tok.pre_tokenizer = norm, split
    tok.decoder = decoders.WordPiece()
    return tok


def _build(family: str, lines: list[str]) -> PreTrainedTokenizerFast:
    roles: dict[str, str]
    extra: list[str] = []
    if family == "llama2":
        roles = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
        tok = _sentencepiece_bpe(lines, 900, ["<unk>", "<s>", "</s>"], prepend=True)
    elif family == "gemma":
        roles = {"pad_token": "<pad>", "eos_token": "<eos>", "bos_token": "<bos>"}
        roles["unk_token"] = "<unk>"
        extra = ["<start_of_turn>", "<end_of_turn>"]
        tok = _sentencepiece_bpe(lines, 1000, [*roles.values(), *extra], prepend=False)
    elif family in ("llama3", "qwen2"):
        if family == "llama3":
            roles = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}
            extra, split = ["<|eot_id|>"], LLAMA3_SPLIT
        else:
            roles = {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
            extra, split = ["<|im_start|>", "<|im_end|>"], QWEN2_SPLIT
        specials = list(dict.fromkeys([*roles.values(), *extra]))
        tok = _byte_level(lines, 1200, specials, split, nfc=family == "qwen2")
    elif family == "neox":
        roles = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
        roles["pad_token"] = "<|padding|>"
        tok = _byte_level(lines, 1000, ["<|endoftext|>", "<|padding|>"], None, nfc=True)
    elif family == "t5":
        roles = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
        extra = ["<extra_id_0>"]
        tok = _t5(lines, 700, ["<pad>", "</s>", "<unk>"])
    elif family == "bert":
        roles = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]"}
        roles |= {"sep_token": "[SEP]", "mask_token": "[MASK]"}
        tok = _bert(lines, 800, list(roles.values()))
    else:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, additional_special_tokens=extra or None, **roles
    )
    if family == "neox":  # GPT-NeoX's added (not special) tokens for runs of spaces
        fast.add_tokens([" " * n for n in range(2, 9)])
    return fast


@cache
def family_tokenizer(family: str) -> PreTrainedTokenizerFast:
    """The family's tokenizer (or a `VARIANTS` entry), trained once per process on `corpus`."""
    if family in VARIANTS:
        return _variant(*VARIANTS[family])
    return _build(family, corpus())


def _meta(*steps: normalizers.Normalizer) -> normalizers.Normalizer:
    """``steps``, then SentencePiece's own marking of spaces (Llama-2's normaliser)."""
    marks = [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    return normalizers.Sequence([*steps, *marks])


# Normalisers no family above uses, each on a family's trained vocabulary:
# name -> (family, normaliser, pre-tokeniser or "keep").
VARIANTS = {
    "unigram_nfkc": ("t5", normalizers.NFKC(), pre.Metaspace(prepend_scheme="first")),
    "bytes_nfd": ("qwen2", normalizers.NFD(), "keep"),
    "bytes_nfkc": ("qwen2", normalizers.NFKC(), "keep"),
    "meta_nfkd": ("llama2", _meta(normalizers.NFKD()), "keep"),
    "meta_lower": ("llama2", _meta(normalizers.Lowercase()), "keep"),
    "wordpiece_nfd": (
        "bert",
        normalizers.Sequence(
            [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()]
        ),
        "keep",
    ),
}
STYLES |= {name: STYLES[family] for name, (family, _, _) in VARIANTS.items()}


def _variant(family: str, norm: normalizers.Normalizer, split: object) -> PreTrainedTokenizerFast:
    base = family_tokenizer(family)
    parts = (
        {"normalizer": norm} if split == "keep" else {"normalizer": norm, "pre_tokenizer": split}
    )
    tok = _with_pipeline(base.backend_tokenizer, **parts)
    roles = {k: v for k, v in base.special_tokens_map.items() if k != "additional_special_tokens"}
    extra = base.special_tokens_map.get("additional_special_tokens") or None
    return PreTrainedTokenizerFast(tokenizer_object=tok, additional_special_tokens=extra, **roles)
