from pathlib import Path

import pytest
import torch
from transformers import DynamicCache

import profuser.generate.decoding
import profuser.generate.kv_cache
from profuser.generate.engine import generate
from profuser.generate.kv_cache import SlotCache
from profuser.models.loading import load_causal_lm
from tests.world_prompts import sampling, world_prompts


def _fresh(rows: int, width: int, start: float) -> tuple[DynamicCache, torch.Tensor]:
    """A prefilled-looking cache of one layer whose entries count up from ``start``."""
    cache = DynamicCache()
    k = torch.arange(rows * width, dtype=torch.float).reshape(rows, 1, width, 1) + start
    cache.update(k, -k, 0)
    return cache, torch.ones((rows, width), dtype=torch.long)


def test_rows_are_right_aligned_to_the_frontier_and_survive_moves() -> None:
    cache = SlotCache(slots=3, columns=4)
    a, mask_a = _fresh(2, 3, 0.0)
    cache.place(a, mask_a, torch.tensor([0, 2]))
    b, mask_b = _fresh(1, 5, 100.0)  # wider than the frontier: the content moves right
    cache.place(b, mask_b, torch.tensor([1]))
    keys = cache.layers[0].keys[:, 0, :, 0]  # [slots, visible]
    assert keys.shape == (3, 5)
    assert keys[1].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert keys[0, 2:].tolist() == [0.0, 1.0, 2.0] and keys[2, 2:].tolist() == [3.0, 4.0, 5.0]
    assert cache.visible_mask()[:, :-1].tolist() == [[0, 0, 1, 1, 1], [1] * 5, [0, 0, 1, 1, 1]]
    for step in range(20):  # decode steps run past the buffer's end: moves and growth
        live = torch.tensor([True, True, True])
        cache.open_column(live)
        new = torch.full((3, 1, 1, 1), 1000.0 + step)
        cache.update(new, -new, 0)
        cache.close_column()
    keys = cache.layers[0].keys[:, 0, :, 0]
    assert keys[1, :5].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert keys[0, -1] == 1019.0 and cache.get_seq_length() == 25
    cache.keep_slots(torch.tensor([1]))
    assert cache.layers[0].keys[0, 0, :5, 0].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert cache.layers[0].values[0, 0, -1, 0] == -1019.0


def test_leading_columns_of_ended_rows_are_hidden() -> None:
    cache = SlotCache(slots=2, columns=16)
    a, mask_a = _fresh(1, 6, 0.0)
    cache.place(a, mask_a, torch.tensor([0]))
    b, mask_b = _fresh(1, 2, 50.0)
    cache.place(b, mask_b, torch.tensor([1]))
    cache.open_column(torch.tensor([False, True]))  # the long row has ended
    assert cache.get_seq_length() == 2 and cache.visible_mask().shape == (2, 3)


@pytest.fixture
def cramped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Buffers with one spare column: the content moves on almost every step."""
    for module in (profuser.generate.kv_cache, profuser.generate.decoding):
        monkeypatch.setattr(module, "room_for", lambda columns: columns + 1)


def _answers(world: Path) -> list[str]:
    tok, prompts, seeds = world_prompts(world, "neox-like", 10)
    model = load_causal_lm(str(world / "models" / "neox-like"))
    outs = generate(model, tok, prompts, seeds, batch_size=4, **sampling(tok, model, 20))
    return [g.text for g in outs]


def test_generation_is_unchanged_when_buffers_move_every_step(world_dir: Path, request) -> None:
    roomy = _answers(world_dir)
    request.getfixturevalue("cramped")
    assert _answers(world_dir) == roomy
