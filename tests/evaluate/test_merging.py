"""Weight-merging baselines (SLERP, TIES, DARE) on two tiny same-architecture Llamas."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from profuser.errors import UserError  # noqa: E402
from profuser.evaluate.merging import MERGE_METHODS, merge_models  # noqa: E402
from tests.tiny import TINY_DECODER

needs_mergekit = pytest.mark.skipif(
    __import__("importlib").util.find_spec("mergekit") is None,
    reason="mergekit not installed (pip install 'profuser[merge]')",
)

_TEXTS = [
    f"USER: what is {i} plus {i + 1}? ASSISTANT: the answer is {2 * i + 1}." for i in range(40)
]


def _save_llama(path: Path, tok, seed: int, **overrides) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    kwargs = dict(
        TINY_DECODER,
        num_key_value_heads=4,
        vocab_size=len(tok),
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    kwargs.update(overrides)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**kwargs))
    with torch.no_grad():  # norms start at 1 in every model: make them differ too
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from profuser.models.chat_templates import get_chat_template
    from profuser.world.tokenizers import build_tokenizer

    root = tmp_path_factory.mktemp("merge-models")
    tok = build_tokenizer("byte_bpe", _TEXTS, 300)
    tok.chat_template = get_chat_template("vicuna_v1.1")
    return {
        "a": _save_llama(root / "a", tok, seed=1),
        "b": _save_llama(root / "b", tok, seed=2),
        "base": _save_llama(root / "base", tok, seed=3),
        "wide": _save_llama(root / "wide", tok, seed=4, intermediate_size=96),
        "root": root,
    }


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> bool:
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


BIG = "model.layers.0.mlp.up_proj.weight"


def test_registry_and_defaults():
    assert set(MERGE_METHODS) == {"slerp", "ties", "dare"}
    assert MERGE_METHODS["slerp"].defaults["t"] == 0.5
    assert MERGE_METHODS["ties"].defaults["density"] == 0.5
    assert tuple(MERGE_METHODS["ties"].defaults["weights"]) == (0.5, 0.5)
    assert MERGE_METHODS["dare"].defaults["density"] == 0.5


@needs_mergekit
def test_slerp_endpoints_and_midpoint(tiny, tmp_path):
    from transformers import AutoTokenizer

    from profuser.models.chat_templates import get_chat_template

    wa, wb = _weights(tiny["a"]), _weights(tiny["b"])
    m0 = _weights(merge_models("slerp", tiny["a"], tiny["b"], tmp_path / "t0", params={"t": 0}))
    m1 = _weights(merge_models("slerp", tiny["a"], tiny["b"], tmp_path / "t1", params={"t": 1}))
    out = merge_models("slerp", tiny["a"], tiny["b"], tmp_path / "mid")
    mid = _weights(out)
    for k in wa:
        torch.testing.assert_close(m0[k], wa[k], rtol=0, atol=1e-6)
        torch.testing.assert_close(m1[k], wb[k], rtol=0, atol=1e-6)
        d_ab = (wa[k] - wb[k]).norm()
        assert (mid[k] - wa[k]).norm() < d_ab, k
        assert (mid[k] - wb[k]).norm() < d_ab, k
        # t=0.5: halfway along the arc, so about as far from either end
        ratio = (mid[k] - wa[k]).norm() / (mid[k] - wb[k]).norm()
        assert 0.7 < ratio < 1.4, (k, ratio)
    # model_a's tokenizer and chat template come along; the model runs
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == get_chat_template("vicuna_v1.1")
    assert tok.get_vocab() == AutoTokenizer.from_pretrained(tiny["a"]).get_vocab()
    info = json.loads((out / "merge_info.json").read_text())
    assert info["method"] == "slerp" and info["params"]["t"] == 0.5


@needs_mergekit
def test_merged_model_generates(tiny, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = merge_models("ties", tiny["a"], tiny["b"], tmp_path / "m")
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "what is 1 plus 2?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tok)) and torch.isfinite(logits).all()


@needs_mergekit
def test_ties_default_base_is_model_a(tiny, tmp_path):
    wa, wb = _weights(tiny["a"]), _weights(tiny["b"])
    out = merge_models("ties", tiny["a"], tiny["b"], tmp_path / "ties")
    m = _weights(out)
    again = _weights(merge_models("ties", tiny["a"], tiny["b"], tmp_path / "ties2", seed=7))
    assert _same(m, again)  # TIES is deterministic
    assert not _same(m, wa) and not _same(m, wb)
    # with model_a as base (zero task vector), every entry is model_a's or model_b's and
    # the kept fraction of model_b's difference is the density
    from_b = torch.isclose(m[BIG], wb[BIG], rtol=0, atol=1e-6)
    from_a = torch.isclose(m[BIG], wa[BIG], rtol=0, atol=1e-6)
    assert bool((from_a | from_b).all())
    assert 0.45 < from_b.float().mean().item() < 0.55
    # the kept entries are those where model_b differs most from model_a
    diff = (wb[BIG] - wa[BIG]).abs()
    assert diff[from_b].min() >= diff[~from_b].max() - 1e-6
    assert json.loads((out / "merge_info.json").read_text())["base"] == str(tiny["a"])


@needs_mergekit
def test_ties_with_explicit_base(tiny, tmp_path):
    wa, wb = _weights(tiny["a"]), _weights(tiny["b"])
    m = _weights(merge_models("ties", tiny["a"], tiny["b"], tmp_path / "t", base=tiny["base"]))
    default = _weights(merge_models("ties", tiny["a"], tiny["b"], tmp_path / "d"))
    assert not _same(m, wa) and not _same(m, wb) and not _same(m, default)
    dense = _weights(
        merge_models(
            "ties",
            tiny["a"],
            tiny["b"],
            tmp_path / "dense",
            base=tiny["base"],
            params={"density": 1.0},
        )
    )
    assert not _same(dense, m)


@needs_mergekit
def test_dare_seeded(tiny, tmp_path):
    wa, wb = _weights(tiny["a"]), _weights(tiny["b"])

    def run(name, **kw):
        return _weights(merge_models("dare", tiny["a"], tiny["b"], tmp_path / name, **kw))

    s0, s0_again, s1 = run("s0", seed=0), run("s0b", seed=0), run("s1", seed=1)
    assert _same(s0, s0_again)
    assert not _same(s0, s1)
    assert not _same(s0, wa) and not _same(s0, wb)
    # base = model_a: a random half of the entries move to a + c * (b - a), one rescale
    # c per tensor (MergeKit keeps the task vector's L1 norm: c is 1/density on average)
    moved = ~torch.isclose(s0[BIG], wa[BIG], rtol=0, atol=1e-6)
    assert 0.4 < moved.float().mean().item() < 0.6
    scale = (s0[BIG] - wa[BIG])[moved] / (wb[BIG] - wa[BIG])[moved]
    assert 1.6 < scale.median().item() < 2.5
    torch.testing.assert_close(
        scale, torch.full_like(scale, scale.median().item()), rtol=1e-3, atol=1e-3
    )
    lin = run("lin", seed=0, params={"consensus": "linear"}, base=tiny["base"])
    assert not _same(lin, s0) and not _same(lin, wa) and not _same(lin, wb)


@needs_mergekit
def test_callers_random_state_untouched(tiny, tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    merge_models("dare", tiny["a"], tiny["b"], tmp_path / "m", seed=5)
    assert torch.equal(torch.rand(3), expected)


@needs_mergekit
def test_output_is_atomic_and_replaceable(tiny, tmp_path):
    out = tmp_path / "nested" / "merged"
    merge_models("slerp", tiny["a"], tiny["b"], out, params={"t": 0})
    merge_models("slerp", tiny["a"], tiny["b"], out, params={"t": 1})
    torch.testing.assert_close(_weights(out)[BIG], _weights(tiny["b"])[BIG])
    assert [p.name for p in out.parent.iterdir()] == ["merged"]  # no temp or old dirs left
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not an earlier merge output"):
        merge_models("slerp", tiny["a"], tiny["b"], precious)
    assert (precious / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nested", "precious"]


def test_shape_mismatch_names_tensor(tiny, tmp_path):
    with pytest.raises(UserError, match=r"tensor 'model\.layers\.0\.mlp\.down_proj\.weight'") as e:
        merge_models("ties", tiny["a"], tiny["wide"], tmp_path / "x")
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="base"):
        merge_models("ties", tiny["a"], tiny["b"], tmp_path / "x", base=tiny["wide"])
    assert not (tmp_path / "x").exists()


def test_architecture_mismatch(tiny, tmp_path):
    from transformers import MistralConfig, MistralForCausalLM

    cfg = json.loads((tiny["a"] / "config.json").read_text())
    torch.manual_seed(0)
    mistral = MistralForCausalLM(
        MistralConfig(
            **{k: cfg[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers")},
            num_attention_heads=4,
            num_key_value_heads=4,
            vocab_size=cfg["vocab_size"],
        )
    )
    mistral.save_pretrained(tmp_path / "mistral")
    with pytest.raises(UserError, match="model_type") as e:
        merge_models("slerp", tiny["a"], tmp_path / "mistral", tmp_path / "x")
    assert "\n" not in str(e.value)


def test_bad_arguments(tiny, tmp_path):
    with pytest.raises(UserError, match="unknown merge method 'lerp'"):
        merge_models("lerp", tiny["a"], tiny["b"], tmp_path / "x")
    with pytest.raises(UserError, match="unknown parameter.*density"):
        merge_models("slerp", tiny["a"], tiny["b"], tmp_path / "x", params={"density": 0.3})
    with pytest.raises(UserError, match=r"t=1\.5 is outside"):
        merge_models("slerp", tiny["a"], tiny["b"], tmp_path / "x", params={"t": 1.5})
    with pytest.raises(UserError, match="density=0 is outside"):
        merge_models("dare", tiny["a"], tiny["b"], tmp_path / "x", params={"density": 0})
    with pytest.raises(UserError, match="weights must be two numbers"):
        merge_models("ties", tiny["a"], tiny["b"], tmp_path / "x", params={"weights": [1]})
    with pytest.raises(UserError, match="not found"):
        merge_models("ties", tiny["a"], tmp_path / "missing", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_missing_mergekit_is_a_user_error(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mergekit", None)
    with pytest.raises(UserError, match=r"pip install 'profuser\[merge\]'"):
        merge_models("slerp", tiny["a"], tiny["b"], tmp_path / "x")
    assert list(tmp_path.iterdir()) == []
