from pathlib import Path

import torch
from transformers import LlamaForCausalLM, MistralConfig, MistralForCausalLM, MptForCausalLM

from profuser.generate.engine import generate
from profuser.generate.model_probe import has_sliding_window, prefix_sharing_exact, seating_exact
from profuser.models.loading import load_causal_lm
from tests.tiny import TINY_DECODER
from tests.world_prompts import prompt_ids, sampling, world_prompts


class HiddenPositions(LlamaForCausalLM):
    """A wrapper whose forward does not name position_ids (as some remote-code models)."""

    def forward(self, input_ids=None, attention_mask=None, **kwargs):  # noqa: ANN001
        kwargs.pop("position_ids", None)
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)


class ColumnCounting(MptForCausalLM):
    """Takes position_ids, but ALiBi counts columns."""

    def forward(self, input_ids=None, position_ids=None, **kwargs):  # noqa: ANN001
        return super().forward(input_ids=input_ids, **kwargs)


def _ids(tok, text: str) -> list[int]:
    return prompt_ids(tok, [text])[0]


def _tiny_mistral(directory: Path, window: int) -> MistralForCausalLM:
    """A seeded two-layer Mistral with a sliding window, saved and loaded back."""
    torch.manual_seed(0)
    config = MistralConfig(
        vocab_size=120,
        **TINY_DECODER,
        sliding_window=window,
    )
    MistralForCausalLM(config).save_pretrained(directory)
    return MistralForCausalLM.from_pretrained(directory).eval()


def test_probes_tell_the_world_models_apart(world_dir: Path) -> None:
    for name, share, seat in (
        ("vicuna-like", True, True),
        ("neox-like", True, True),
        ("mpt-like", False, True),  # ALiBi: no position_ids, but relative to the last column
    ):
        tok, texts, _ = world_prompts(world_dir, name, 1)
        model = load_causal_lm(str(world_dir / "models" / name))
        pad = tok.pad_token_id or 0
        assert prefix_sharing_exact(model, _ids(tok, texts[0]), pad) is share, name
        assert seating_exact(model, _ids(tok, texts[0]), pad) is seat, name


def test_prefix_sharing_check_catches_a_model_that_ignores_position_ids(world_dir: Path) -> None:
    tok, texts, _ = world_prompts(world_dir, "mpt-like", 1)
    model = ColumnCounting.from_pretrained(str(world_dir / "models" / "mpt-like"))
    assert prefix_sharing_exact(model, _ids(tok, texts[0]), tok.pad_token_id or 0) is False


def test_hidden_positions_decode_in_static_batches_and_match(world_dir: Path) -> None:
    tok, texts, seeds = world_prompts(world_dir, "vicuna-like", 9)
    model = HiddenPositions.from_pretrained(str(world_dir / "models" / "vicuna-like"))
    pad = tok.pad_token_id or 0
    assert seating_exact(model, _ids(tok, texts[0]), pad) is False
    assert prefix_sharing_exact(model, _ids(tok, texts[0]), pad) is False
    kw = sampling(tok, model, 16)
    alone = [g.text for g in generate(model, tok, texts, seeds, batch_size=1, **kw)]
    assert [g.text for g in generate(model, tok, texts, seeds, batch_size=4, **kw)] == alone


def test_sliding_window_models_do_not_share_prefixes(tmp_path: Path) -> None:
    model = _tiny_mistral(tmp_path, window=16)
    assert has_sliding_window(model)
    assert prefix_sharing_exact(model, list(range(3, 15)), 0) is False
    assert seating_exact(model, list(range(3, 15)), 0) is True


def test_sliding_window_model_decodes_the_same_in_any_batch(tmp_path: Path) -> None:
    from profuser.generate.decoding import decode

    model = _tiny_mistral(tmp_path, window=8)
    g = torch.Generator().manual_seed(1)
    prompts = [
        torch.randint(3, 120, (int(n),), generator=g).tolist() for n in [5, 12, 20, 7, 9, 16]
    ]
    kw = dict(pad_id=0, eos_ids=[1], temperature=1.0, top_p=0.9, max_new_tokens=12, valid_vocab=120)
    seeds = list(range(len(prompts)))
    alone = [
        decode(model, [p], [s], batch_size=1, **kw)[0] for p, s in zip(prompts, seeds, strict=True)
    ]
    assert decode(model, prompts, seeds, batch_size=3, **kw) == alone
