"""Fixtures for the reward-model tests (helpers that build tiny models are in ``helpers``)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from profuser.world.skills import generate_examples  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread on a shared CPU; restore the setting after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def world_texts() -> list[str]:
    """A little of the tiny world's text to train tokenizers on."""
    exs = generate_examples(60, 0, "rm-test-corpus")
    return [t for e in exs for t in (e.system, e.instruction, e.response)]


@pytest.fixture(scope="session")
def examples():
    """Six world examples (prompts with correct short and long answers)."""
    return generate_examples(6, 3, "rm-test")
