"""The size of the tiny seeded decoders the tests build (one place, so they stay alike)."""

from __future__ import annotations

# Llama-style config keys: two layers, hidden 32, grouped-query attention (4 heads, 2 kv heads).
TINY_DECODER: dict[str, int] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
