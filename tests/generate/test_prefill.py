from pathlib import Path

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from profuser.generate.prefill import prefill, prefix_groups
from profuser.models.loading import load_causal_lm
from tests.world_prompts import prompt_ids, world_prompts


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=12), min_size=1, max_size=10).map(
        sorted
    )
)
def test_prefix_groups_cover_every_row_with_a_shared_prefix(prompts: list[list[int]]) -> None:
    groups = prefix_groups(prompts)
    assert [r for _, members in groups for r in members] == list(range(len(prompts)))
    for length, members in groups:
        head = prompts[members[0]][:length]
        for r in members:
            assert prompts[r][:length] == head  # the prefix is shared
            assert length < len(prompts[r])  # and leaves each row a token of its own


def test_prefix_groups_follow_system_messages() -> None:
    head, sys_a, sys_b = [1, 2], [5] * 20, [5] * 10 + [6] * 10  # b shares half of a
    prompts = sorted([head + sys_a + [7, 8], head + sys_a + [9], head + sys_b + [7], [3, 4]])
    groups = prefix_groups(prompts)
    assert sorted(len(m) for _, m in groups) == [1, 1, 2]
    assert max(n for n, _ in groups) == len(head + sys_a)


def _world_prompts(world: Path, name: str, n: int) -> tuple:
    tok, prompts, _ = world_prompts(world, name, n)
    model = load_causal_lm(str(world / "models" / name))
    return tok, model, sorted(prompt_ids(tok, prompts))


def test_shared_prefix_prefill_gives_the_plain_logits(world_dir: Path) -> None:
    for name in ("vicuna-like", "llama-chat-like", "neox-like"):
        tok, model, prompts = _world_prompts(world_dir, name, 24)
        assert len(prefix_groups(prompts)) < len(prompts)  # there is something to share
        with torch.no_grad():
            _, mask_a, shared = prefill(model, prompts, tok.pad_token_id or 0, share=True)
            _, mask_b, plain = prefill(model, prompts, tok.pad_token_id or 0, share=False)
        torch.testing.assert_close(shared, plain, atol=1e-4, rtol=1e-4)
        assert mask_a.sum() == mask_b.sum() == sum(len(p) for p in prompts)
