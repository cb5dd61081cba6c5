"""Reproducible attention for training: the same seed gives the same weights.

PyTorch's fused CPU attention kernel (scaled_dot_product_attention's flash path)
splits its backward pass over threads and accumulates the key and value
gradients in an order that can change from run to run, so two trainings with
the same seed end up to about 1e-6 apart with two threads (Llama-like models;
``torch.use_deterministic_algorithms`` does not cover it). The math backend
computes the same attention from matrix products and a softmax, which are
reproducible for a given thread count. Any model that calls
``scaled_dot_product_attention`` takes it; nothing model-specific is changed.
Its price is the attention matrix held in memory, as eager attention holds it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from torch.nn.attention import SDPBackend, sdpa_kernel


def reproducible_attention(enabled: bool) -> AbstractContextManager:
    """A context in which ``scaled_dot_product_attention`` uses its reproducible (math)
    backend; a no-op when ``enabled`` is false."""
    return sdpa_kernel([SDPBackend.MATH]) if enabled else nullcontext()
