"""The tiny world's BERTScore encoder: a seeded two-layer BERT and its WordPiece tokenizer.

The ``reference`` reward kind computes BERTScore with the ``bert-score`` package from a
local encoder directory; this one is written to ``<world>/encoder/tiny-bert`` with
``save_pretrained``, so tests (and any config naming that path) score offline. Its weights
are random but seeded: identical texts still score 1 and shared words score high, which is
all BERTScore's properties need. It is not part of the world's spec: adding it to a world
built before it existed changes neither the world's key nor anything else in it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from profuser.world.tokenizers import build_tokenizer

ENCODER_SUBDIR = Path("encoder") / "tiny-bert"
ENCODER_SEED = 0
VOCAB_SIZE = 400
MAX_POSITIONS = 512
BERT_SPECIALS = ("[CLS]", "[SEP]", "[MASK]")


def encoder_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A lower-casing WordPiece tokenizer trained on ``texts`` that wraps a text as
    ``[CLS] ... [SEP]`` (deterministic for the same texts)."""
    base = build_tokenizer("wordpiece", texts, VOCAB_SIZE, BERT_SPECIALS)
    core = base.backend_tokenizer
    cls_id, sep_id = core.token_to_id("[CLS]"), core.token_to_id("[SEP]")
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=MAX_POSITIONS,
    )


def save_encoder(path: Path, texts: Iterable[str], seed: int = ENCODER_SEED) -> Path:
    """Write a seeded tiny ``BertModel`` and its tokenizer (trained on ``texts``) to ``path``.

    The global torch random state is left as it was.
    """
    tok = encoder_tokenizer(texts)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=tok.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config).eval()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return Path(path)


def _world_texts(world_root: Path) -> list[str]:
    """The world's training instructions and answers (``data/train.jsonl``)."""
    texts = []
    with (world_root / "data" / "train.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts += [row["system_prompt"] or "", row["question"], row["response"]]
    return texts


def ensure_encoder(world_root: Path) -> Path:
    """``<world_root>/encoder/tiny-bert``, written there first if it is not (atomically: into
    a temporary directory, then renamed; a second process that loses the race keeps the
    first one's)."""
    final = Path(world_root) / ENCODER_SUBDIR
    if final.is_dir():
        return final
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_encoder(tmp, _world_texts(Path(world_root)))
    try:
        os.replace(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.is_dir():
            raise
    return final
