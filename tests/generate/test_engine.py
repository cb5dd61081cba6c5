from pathlib import Path

import torch

from profuser.generate.engine import example_seed, generate
from profuser.models.loading import load_causal_lm
from tests.world_prompts import sampling, world_prompts


def _setup(world: Path, name: str = "vicuna-like", n: int = 10):
    tok, prompts, seeds = world_prompts(world, name, n)
    model = load_causal_lm(str(world / "models" / name))
    return tok, model, prompts, seeds, sampling(tok, model)


def test_sampling_is_reproducible_and_independent_of_batch_size(mini_world: Path) -> None:
    tok, model, prompts, seeds, kw = _setup(mini_world)
    a = generate(model, tok, prompts, seeds, batch_size=4, **kw)
    b = generate(model, tok, prompts, seeds, batch_size=4, **kw)
    c = generate(model, tok, prompts, seeds, batch_size=1, **kw)
    d = generate(model, tok, prompts[::-1], seeds[::-1], batch_size=3, **kw)[::-1]
    assert [g.text for g in a] == [g.text for g in b]
    assert [g.text for g in a] == [g.text for g in c]
    assert [g.text for g in a] == [g.text for g in d]
    other = generate(model, tok, prompts, [s + 1 for s in seeds], batch_size=4, **kw)
    assert [g.text for g in other] != [g.text for g in a]


def test_answers_do_not_depend_on_prefix_sharing_or_refills(world_dir: Path) -> None:
    # Twelve prompts through three slots: rows end and queued prompts refill their slots.
    for name in ("vicuna-like", "mpt-like", "neox-like"):
        tok, model, prompts, seeds, kw = _setup(world_dir, name, 12)
        kw["max_new_tokens"] = 24
        alone = [g.text for g in generate(model, tok, prompts, seeds, batch_size=1, **kw)]
        for share in (True, False):
            outs = generate(model, tok, prompts, seeds, batch_size=3, share_prefixes=share, **kw)
            assert [g.text for g in outs] == alone, (name, share)


def test_greedy_generation_matches_a_plain_forward_loop(world_dir: Path) -> None:
    tok, model, prompts, seeds, kw = _setup(world_dir, "vicuna-like", 6)
    outs = generate(model, tok, prompts, seeds, batch_size=4, max_new_tokens=8, temperature=0.0)
    for prompt, g in zip(prompts, outs, strict=True):
        ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        new: list[int] = []
        with torch.no_grad():
            for _ in range(8):  # no cache, no padding: the reference
                nxt = int(model(input_ids=ids).logits[0, -1, : len(tok)].argmax())
                if nxt == tok.eos_token_id:
                    break
                new.append(nxt)
                ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
        assert g.text == tok.decode(new, skip_special_tokens=True).strip()


def test_padded_vocab_model_generates_only_tokenizer_ids(mini_world: Path) -> None:
    tok, model, prompts, seeds, kw = _setup(mini_world, "mpt-like", 4)
    with torch.no_grad():  # make the padding rows the most likely
        model.get_output_embeddings().weight[len(tok) :] = 5.0
    outs = generate(model, tok, prompts, seeds, batch_size=2, **kw)
    assert all(g.num_tokens > 0 for g in outs)


def test_example_seed_is_stable() -> None:
    assert example_seed(0, "x", "m") == example_seed(0, "x", "m")
    assert example_seed(0, "x", "m") != example_seed(0, "y", "m")
