import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from profuser.generate.decoding import sample_rows


def _plain_sample(logits: torch.Tensor, u: float, temperature: float, top_p: float) -> int:
    """The nucleus by a full sort, then the first token whose cumulative mass passes u."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    order = sorted(range(len(probs)), key=lambda i: -float(probs[i]))
    kept, mass = [], 0.0
    for i in order:
        if mass >= top_p:
            break
        kept.append(i)
        mass += float(probs[i])
    target, run = u * mass, 0.0
    for i in kept:
        run += float(probs[i])
        if run > target:
            return i
    return kept[-1]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**31 - 1),
    vocab=st.sampled_from([5, 70, 300]),
    spread=st.sampled_from([0.1, 1.0, 8.0]),  # 0.1: flat, the nucleus holds most of the vocab
    top_p=st.sampled_from([0.5, 0.9, 0.95, 1.0]),
)
def test_sample_rows_matches_a_full_sort(
    seed: int, vocab: int, spread: float, top_p: float
) -> None:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, vocab, generator=g) * spread
    u = torch.rand(4, generator=g)
    got = sample_rows(logits, u, temperature=0.7, top_p=top_p)
    want = [_plain_sample(logits[r], float(u[r]), 0.7, top_p) for r in range(4)]
    assert got.tolist() == want


def test_sample_rows_keeps_the_top_p_prefix() -> None:
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]]))
    picks = {int(sample_rows(logits, torch.tensor([u / 200]), 1.0, 0.8)) for u in range(200)}
    assert picks == {0, 1}


def test_greedy_is_argmax() -> None:
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    assert sample_rows(logits, torch.zeros(2), 0.0, 0.9).tolist() == [1, 0]


def test_a_rows_token_does_not_depend_on_its_batch_mates_under_ties() -> None:
    # Integer logits tie a lot (as bf16 ones do); a flat batch-mate needs the full sort.
    g = torch.Generator().manual_seed(0)
    peaked = torch.round(torch.randn(200, 300, generator=g) * 2)
    u = torch.rand(200, generator=g)
    alone = [int(sample_rows(peaked[r : r + 1], u[r : r + 1], 0.7, 0.9)[0]) for r in range(200)]
    mixed = sample_rows(torch.cat([peaked, torch.zeros(200, 300)]), torch.cat([u, u]), 0.7, 0.9)
    assert mixed[:200].tolist() == alone
    want = [_plain_sample(peaked[r], float(u[r]), 0.7, 0.9) for r in range(200)]
    assert alone == want  # ties go to the lower token id, as in the plain sort
