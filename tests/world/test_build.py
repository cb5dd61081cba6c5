import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from profuser.models.chat import encode_turn, end_of_turn_ids
from profuser.world.architectures import source_model
from profuser.world.build import (
    DEFAULT_SOURCES,
    WorldSpec,
    _pad,
    batch_backward,
    build_world,
    micro_batches,
    source_examples,
)
from profuser.world.pool import POOL_FILE, POOL_SCALE
from profuser.world.skills import SKILLS

MINI_SPEC = WorldSpec(  # the spec of conftest's mini_world
    n_train=40, n_heldout_per_skill=3, n_source_examples=64, steps=4, batch=8, rm_steps=4
)


def _weights(d: Path) -> dict[str, torch.Tensor]:
    return load_file(str(d / "model.safetensors"))


def test_mini_world_loads_through_auto_classes(mini_world: Path) -> None:
    kinds = set()
    archs = set()
    for src in DEFAULT_SOURCES:
        d = mini_world / "models" / src.name
        tok = AutoTokenizer.from_pretrained(d)
        model = AutoModelForCausalLM.from_pretrained(d)
        assert tok.chat_template, "each model carries its own chat template"
        kinds.add(
            type(tok.backend_tokenizer.model).__name__ + str(tok.backend_tokenizer.pre_tokenizer)
        )
        archs.add(model.config.model_type)
        turn = encode_turn(tok, "sys", "What is 2 + 2?", "4")
        assert turn.answer_ids and turn.prompt_ids
        assert end_of_turn_ids(tok)
    assert archs == {"llama", "mpt", "gpt_neox"}
    assert len(kinds) == 3
    mpt = AutoModelForCausalLM.from_pretrained(mini_world / "models" / "mpt-like")
    mtok = AutoTokenizer.from_pretrained(mini_world / "models" / "mpt-like")
    assert mpt.config.vocab_size != len(mtok), "one source has a padded vocabulary, as MPT does"
    vic = AutoTokenizer.from_pretrained(mini_world / "models" / "vicuna-like")
    lla = AutoTokenizer.from_pretrained(mini_world / "models" / "llama-chat-like")
    assert vic.get_vocab() == lla.get_vocab(), "target and llama-chat share one tokenizer"
    assert vic.chat_template != lla.chat_template


def test_rebuild_with_same_seed_is_identical(tmp_path: Path, mini_world: Path) -> None:
    again = build_world(MINI_SPEC, root=tmp_path, check=False)
    assert again != mini_world
    for sub in ("data/train.jsonl", "data/heldout.jsonl"):
        assert (again / sub).read_bytes() == (mini_world / sub).read_bytes()
    subs = [f"models/{src.name}" for src in DEFAULT_SOURCES] + [
        "encoder/tiny-bert",
        "reward/tiny-rm",
    ]
    for sub in subs:
        a, b = _weights(again / sub), _weights(mini_world / sub)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{sub}: {k} differs"
        ta = (again / sub / "tokenizer.json").read_text()
        assert ta == (mini_world / sub / "tokenizer.json").read_text()


def test_the_extended_world_adds_a_qwen2_and_a_gemma_like_source(
    tmp_path: Path, mini_world6: Path
) -> None:
    """Roster ``six``: two more architectures and tokenizer kinds, each source with its own
    chat template and end-of-turn marker, rebuilt bit for bit from the same seed."""
    from dataclasses import replace

    from profuser.world.build import EXTRA_SOURCES
    from profuser.world.resolve import world_spec_from
    from tests.conftest import MINI_OPTIONS

    kinds = set()
    for src in EXTRA_SOURCES:
        d = mini_world6 / "models" / src.name
        tok = AutoTokenizer.from_pretrained(d)
        model = AutoModelForCausalLM.from_pretrained(d)
        assert model.config.model_type == src.arch
        kinds.add(str(tok.backend_tokenizer.normalizer) + str(tok.backend_tokenizer.pre_tokenizer))
        turn = encode_turn(tok, "sys", "What is half of 18?", "9")
        assert turn.answer_ids and turn.prompt_ids
        stops = tok.convert_ids_to_tokens(end_of_turn_ids(tok))
        assert {"gemma-like": "<end_of_turn>", "qwen2-like": "<|im_end|>"}[src.name] in stops
    assert len(kinds) == 2
    gemma = AutoTokenizer.from_pretrained(mini_world6 / "models" / "gemma-like")
    assert gemma.backend_tokenizer.pre_tokenizer is None, "Gemma splits no words before BPE"
    digits = AutoTokenizer.from_pretrained(mini_world6 / "models" / "qwen2-like")
    assert digits.tokenize("1234") == ["1", "2", "3", "4"], "Qwen2 keeps each digit a token"
    skills = {json.loads(line)["skill"] for line in (mini_world6 / "data" / "train.jsonl").open()}
    assert "half" in skills and "capital" in skills
    spec = replace(world_spec_from({"roster": "six"}), **MINI_OPTIONS)
    again = build_world(spec, root=tmp_path, check=False)
    for src in spec.sources:
        a = _weights(again / "models" / src.name)
        b = _weights(mini_world6 / "models" / src.name)
        assert all(torch.equal(a[k], b[k]) for k in a), f"{src.name} differs"
    assert (
        _weights(again / "reward/tiny-rm").keys() == _weights(mini_world6 / "reward/tiny-rm").keys()
    )


def test_micro_batches_cover_the_batch_sorted_by_length() -> None:
    lengths = [5, 1, 9, 3, 7, 2, 8]
    parts = micro_batches([0, 2, 4, 6, 1], lengths, 3)
    assert parts == [[1, 0], [4], [6, 2]]
    assert micro_batches([3], lengths, 3) == [[3]]
    assert micro_batches([0, 1], lengths, 1) == [[1, 0]]


def test_a_batch_in_micro_batches_has_the_whole_batchs_gradient(mini_world: Path) -> None:
    """Cutting a batch into length-sorted parts changes the padding, not the loss or the
    gradient (against the model's own loss on the whole padded batch)."""
    src = DEFAULT_SOURCES[0]
    tok = AutoTokenizer.from_pretrained(mini_world / "models" / src.name)
    batch = []
    for ex, answer in source_examples(src, MINI_SPEC)[:12]:
        turn = encode_turn(tok, ex.system, ex.instruction, answer)
        batch.append((turn.input_ids, [-100] * len(turn.prompt_ids) + turn.answer_ids))
    torch.manual_seed(0)
    model = source_model(src.arch, tok, MINI_SPEC.hidden, MINI_SPEC.layers)
    ids, att, lab = _pad(batch, tok.pad_token_id)
    reference = model(input_ids=ids, attention_mask=att, labels=lab).loss
    reference.backward()
    want = {k: p.grad.clone() for k, p in model.named_parameters()}
    for parts in (1, 3, 12):
        model.zero_grad()
        loss = batch_backward(model, batch, tok.pad_token_id, parts)
        assert loss == pytest.approx(reference.item(), rel=1e-5)
        for k, p in model.named_parameters():
            assert torch.allclose(p.grad, want[k], rtol=1e-4, atol=1e-7), (parts, k)


def test_cached_world_without_encoder_gets_it(tmp_path: Path, mini_world: Path) -> None:
    """A world cached before the BERTScore encoder existed gets it on the next build_world,
    without a rebuild and without a new key."""
    world = tmp_path / mini_world.name
    shutil.copytree(mini_world, world, ignore=shutil.ignore_patterns("encoder"))
    meta = (world / "world.json").read_bytes()
    assert build_world(MINI_SPEC, root=tmp_path, check=False) == world
    assert (world / "world.json").read_bytes() == meta
    added, built = _weights(world / "encoder/tiny-bert"), _weights(mini_world / "encoder/tiny-bert")
    assert added.keys() == built.keys() and all(torch.equal(added[k], built[k]) for k in added)
    tok = AutoTokenizer.from_pretrained(world / "encoder/tiny-bert")
    ids = tok("The answer is 13.")["input_ids"]
    assert [ids[0], ids[-1]] == [tok.cls_token_id, tok.sep_token_id]
    assert AutoModel.from_pretrained(world / "encoder/tiny-bert").config.model_type == "bert"


def test_other_seed_gives_other_world(tmp_path: Path, mini_world: Path) -> None:
    spec = WorldSpec(
        seed=1, n_train=40, n_heldout_per_skill=3, n_source_examples=64, steps=4, batch=8
    )
    other = build_world(spec, root=tmp_path, check=False)
    assert (other / "data/train.jsonl").read_bytes() != (
        mini_world / "data/train.jsonl"
    ).read_bytes()


MARGIN = 0.2


def test_each_source_is_strongest_somewhere_else(world_dir: Path) -> None:
    """Each source leads every other source by a clear margin on one of its own skills."""
    acc = json.loads((world_dir / "world.json").read_text())["accuracy"]
    assert set(acc) == {s.name for s in DEFAULT_SOURCES}
    for src in DEFAULT_SOURCES:
        assert set(acc[src.name]) == set(SKILLS)
        lead = {
            k: acc[src.name][k] - max(acc[o][k] for o in acc if o != src.name) for k in src.strong
        }
        assert max(lead.values()) >= MARGIN, (src.name, lead, acc)
    # and no single source dominates all skills
    for name in acc:
        assert any(acc[o][k] > acc[name][k] for o in acc if o != name for k in SKILLS)


def test_the_candidate_pool_continues_the_fusion_set(mini_world: Path) -> None:
    pool = (mini_world / POOL_FILE).read_text().splitlines()
    train = (mini_world / "data/train.jsonl").read_text().splitlines()
    assert len(pool) == POOL_SCALE * MINI_SPEC.n_train
    assert pool[: len(train)] == train, "the fusion set is the pool's first rows"
    assert len({json.loads(r)["id"] for r in pool}) == len(pool)


def test_a_world_without_its_pool_gets_it_on_reuse(tmp_path: Path, mini_world: Path) -> None:
    world = tmp_path / mini_world.name
    shutil.copytree(mini_world, world)
    (world / POOL_FILE).unlink()
    assert build_world(MINI_SPEC, root=tmp_path, check=False) == world
    assert (world / POOL_FILE).read_bytes() == (mini_world / POOL_FILE).read_bytes()
