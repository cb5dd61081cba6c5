from pathlib import Path

import numpy as np
import pytest
import torch

from profuser.models.chat import encode_turn
from profuser.models.loading import load_causal_lm, load_tokenizer, usable_vocab
from profuser.teacher.forcing import ForcedItem, length_batches, teacher_force
from profuser.world.check import read_jsonl

SOURCES = ["vicuna-like", "mpt-like", "neox-like"]


def _items(tok, rows):
    out = []
    for r in rows:
        t = encode_turn(tok, r["system_prompt"], r["question"], r["response"])
        out.append(ForcedItem(r["id"], t.prompt_ids, t.answer_ids))
    return out


@pytest.mark.parametrize("name", SOURCES)
def test_ce_and_topk_match_the_model_itself(mini_world: Path, name: str) -> None:
    d = mini_world / "models" / name
    tok, model = load_tokenizer(str(d)), load_causal_lm(str(d))
    rows = read_jsonl(mini_world / "data" / "train.jsonl")[:6]
    items = _items(tok, rows)
    vocab = usable_vocab(model, tok)
    got = {
        r.key: r
        for r in teacher_force(
            model,
            items,
            pad_id=tok.pad_token_id,
            valid_vocab=vocab,
            batch_tokens=300,
            temperature=2.0,
            top_k=10,
            top_p=0.95,
        )
    }
    for it in items:
        ids = torch.tensor([it.prompt_ids + it.answer_ids])
        labels = torch.tensor([[-100] * len(it.prompt_ids) + it.answer_ids])
        with torch.no_grad():
            out = model(input_ids=ids, labels=labels)
        # The model's own loss over the same answer tokens (its full-width softmax).
        logits = out.logits[0, len(it.prompt_ids) - 1 : -1].float()
        if vocab < logits.shape[-1]:
            ref_ce = torch.nn.functional.cross_entropy(
                logits[:, :vocab], torch.tensor(it.answer_ids)
            )
        else:
            ref_ce = out.loss
        assert got[it.key].ce == pytest.approx(float(ref_ce), rel=1e-4, abs=1e-5)
        lsm = torch.log_softmax(logits[:, :vocab] / 2.0, dim=-1)
        top_lp, top_ids = lsm.topk(10, dim=-1)
        res = got[it.key]
        keep = res.ids >= 0
        assert keep[:, 0].all()
        np.testing.assert_array_equal(res.ids[keep], top_ids.numpy()[keep])
        np.testing.assert_allclose(res.logprobs[keep], top_lp.numpy()[keep], atol=1e-5)
        # top-p: the smallest prefix reaching 0.95
        cum = np.cumsum(np.exp(top_lp.numpy()), axis=-1)
        expect = np.minimum((cum < 0.95).sum(-1) + 1, 10)
        np.testing.assert_array_equal(keep.sum(-1), expect)


def test_padded_vocab_model_never_proposes_ids_past_the_tokenizer(mini_world: Path) -> None:
    d = mini_world / "models" / "mpt-like"
    tok, model = load_tokenizer(str(d)), load_causal_lm(str(d))
    assert model.config.vocab_size > len(tok)
    rows = read_jsonl(mini_world / "data" / "train.jsonl")[:4]
    for res in teacher_force(
        model, _items(tok, rows), pad_id=tok.pad_token_id, valid_vocab=usable_vocab(model, tok)
    ):
        assert res.ids.max() < len(tok)


def test_length_batches_respect_the_token_budget() -> None:
    items = [ForcedItem(str(i), [1] * (i % 7 + 1), [2] * (i % 5 + 1)) for i in range(50)]
    batches = length_batches(items, 40)
    assert sorted(i for b in batches for i in b) == list(range(50))
    for b in batches:
        width = max(len(items[i].prompt_ids) + len(items[i].answer_ids) for i in b)
        assert width * len(b) <= 40 or len(b) == 1


def test_non_finite_logits_are_flagged_not_stored(mini_world: Path) -> None:
    d = mini_world / "models" / "vicuna-like"
    tok, model = load_tokenizer(str(d)), load_causal_lm(str(d))
    head = model.get_output_embeddings()
    with torch.no_grad():
        head.weight[5] = float("nan")
    rows = read_jsonl(mini_world / "data" / "train.jsonl")[:3]
    res = list(
        teacher_force(model, _items(tok, rows), pad_id=tok.pad_token_id, valid_vocab=len(tok))
    )
    assert all(not r.finite and r.ids is None and np.isnan(r.ce) for r in res)
