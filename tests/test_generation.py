from pathlib import Path

import torch

from profuser.chat import end_of_turn_ids, render_prompt
from profuser.generation import SeededSampler, example_seed, generate
from profuser.models import load_causal_lm, load_tokenizer, usable_vocab
from profuser.world.check import read_jsonl


def _setup(world: Path, name: str = "vicuna-like", n: int = 10):
    d = world / "models" / name
    tok, model = load_tokenizer(str(d)), load_causal_lm(str(d))
    rows = read_jsonl(world / "data" / "train.jsonl")[:n]
    prompts = [render_prompt(tok, r["system_prompt"], r["question"]) for r in rows]
    seeds = [example_seed(0, r["id"], name) for r in rows]
    kw = dict(
        temperature=1.0,
        top_p=0.95,
        max_new_tokens=12,
        stop_ids=end_of_turn_ids(tok),
        valid_vocab=usable_vocab(model, tok),
    )
    return tok, model, prompts, seeds, kw


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


def test_padded_vocab_model_generates_only_tokenizer_ids(mini_world: Path) -> None:
    tok, model, prompts, seeds, kw = _setup(mini_world, "mpt-like", 4)
    with torch.no_grad():  # make the padding rows the most likely
        model.get_output_embeddings().weight[len(tok) :] = 5.0
    outs = generate(model, tok, prompts, seeds, batch_size=2, **kw)
    assert all(g.num_tokens > 0 for g in outs)


def test_sampler_keeps_top_p_prefix() -> None:
    scores = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]]))
    picks = set()
    for s in range(200):
        out = SeededSampler([s], temperature=1.0, top_p=0.8, valid_vocab=4)(None, scores.clone())
        picks.add(int(out.argmax()))
    assert picks == {0, 1}


def test_example_seed_is_stable() -> None:
    assert example_seed(0, "x", "m") == example_seed(0, "x", "m")
    assert example_seed(0, "x", "m") != example_seed(0, "y", "m")
