"""The tiny sources' architectures: small, randomly initialised configurations of five real
model families (Llama, MPT, GPT-NeoX, Qwen2, Gemma), each with the family's own quirks
(MPT's padded vocabulary, Qwen2's grouped-query and Gemma's multi-query attention, Gemma's
tied embeddings)."""

from __future__ import annotations

import math

from transformers import (
    GemmaConfig,
    GemmaForCausalLM,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MptConfig,
    MptForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2Config,
    Qwen2ForCausalLM,
)

ARCHITECTURES = ("llama", "mpt", "gpt_neox", "qwen2", "gemma")


def source_model(
    arch: str, tok: PreTrainedTokenizerBase, hidden: int, layers: int
) -> PreTrainedModel:
    """A freshly initialised source of ``arch`` with ``hidden`` units and ``layers`` layers
    for the vocabulary of ``tok``."""
    ids = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    h = hidden
    if arch == "mpt":
        # Like the real MPT, the embedding is padded past the tokenizer's size.
        cfg = MptConfig(
            vocab_size=64 * math.ceil(len(tok) / 64) + 64,
            d_model=h,
            n_heads=4,
            n_layers=layers,
            expansion_ratio=3,
            max_seq_len=1024,
            **ids,
        )
        return MptForCausalLM(cfg)
    # The other families name their sizes alike; each adds its own attention and embeddings.
    common = {
        "vocab_size": len(tok),
        "hidden_size": h,
        "intermediate_size": 3 * h,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "max_position_embeddings": 1024,
        **ids,
    }
    if arch == "llama":
        return LlamaForCausalLM(
            LlamaConfig(**common, num_key_value_heads=4, tie_word_embeddings=False)
        )
    if arch == "gpt_neox":
        return GPTNeoXForCausalLM(GPTNeoXConfig(**common, tie_word_embeddings=False))
    if arch == "qwen2":  # grouped-query attention, as in Qwen2
        return Qwen2ForCausalLM(
            Qwen2Config(**common, num_key_value_heads=2, tie_word_embeddings=False)
        )
    if arch == "gemma":  # multi-query attention as in Gemma-2B; tied embeddings (its default)
        return GemmaForCausalLM(GemmaConfig(**common, num_key_value_heads=1, head_dim=h // 4))
    raise ValueError(f"unknown architecture {arch!r}")
