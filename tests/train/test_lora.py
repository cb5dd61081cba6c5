from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file

from profuser.config import LoraOptions, TrainConfig, load_config
from profuser.errors import ConfigError, UserError
from profuser.models.loading import load_causal_lm
from profuser.train.loop import train_fusion
from profuser.train.lora import ADAPTER_DIR
from profuser.train.schedules import get_schedule
from tests.train.test_loop import _cfg, _examples


def _lora_cfg(**kw) -> TrainConfig:
    return _cfg(lora=LoraOptions(rank=4, alpha=8, dropout=0.0), **kw)


def test_lora_saves_an_adapter_and_the_merged_model_it_equals(
    mini_world: Path, tmp_path: Path
) -> None:
    exs, tok = _examples(mini_world, 8)
    src = str(mini_world / "models" / "vicuna-like")
    res = train_fusion(
        load_causal_lm(src), tok, exs, get_schedule("profuser"), _lora_cfg(), tmp_path / "l",
        seed=0, k=4,
    )  # fmt: skip
    start = load_file(str(Path(src) / "model.safetensors"))
    merged = load_file(str(res.final_dir / "model.safetensors"))
    assert set(merged) == set(start)  # a plain model: no adapter tensors left in it
    moved = {k for k in start if not torch.equal(start[k], merged[k])}
    # adapters sit on the linear layers of the blocks; embeddings and norms stay frozen
    assert moved and all("proj" in k for k in moved)
    assert not any("embed" in k or "norm" in k for k in moved)
    # the merged weights are the base plus the saved adapter's update
    again = PeftModel.from_pretrained(load_causal_lm(src), str(res.final_dir / ADAPTER_DIR))
    folded = again.merge_and_unload().state_dict()
    for key in moved:
        torch.testing.assert_close(folded[key], merged[key], rtol=1e-5, atol=1e-6)
    # and it loads back through the Auto classes like any trained variant
    model = load_causal_lm(str(res.final_dir))
    ids = torch.tensor([exs[0].train.prompt_ids])
    assert model(input_ids=ids).logits.shape[-1] == len(tok)


def test_lora_resumes_to_the_same_weights(mini_world: Path, tmp_path: Path) -> None:
    exs, tok = _examples(mini_world, 8)
    src = str(mini_world / "models" / "vicuna-like")
    phases = get_schedule("simulfuse")
    full = train_fusion(
        load_causal_lm(src), tok, exs, phases, _lora_cfg(), tmp_path / "full", seed=1, k=4
    )
    train_fusion(
        load_causal_lm(src), tok, exs, phases, _lora_cfg(), tmp_path / "cut", seed=1, k=4,
        stop_after=3,
    )  # fmt: skip
    resumed = train_fusion(
        load_causal_lm(src), tok, exs, phases, _lora_cfg(), tmp_path / "cut", seed=1, k=4
    )
    a = load_file(str(full.final_dir / "model.safetensors"))
    b = load_file(str(resumed.final_dir / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_unknown_target_module_is_a_one_line_error(mini_world: Path, tmp_path: Path) -> None:
    exs, tok = _examples(mini_world, 4)
    src = str(mini_world / "models" / "vicuna-like")
    cfg = _cfg(lora=LoraOptions(rank=4, target_modules=["no_such_proj"]))
    with pytest.raises(UserError, match=r"train\.lora\.target_modules"):
        train_fusion(
            load_causal_lm(src), tok, exs, get_schedule("csft"), cfg, tmp_path / "x", seed=0, k=4
        )


def test_lora_options_are_validated_by_field() -> None:
    cfg = load_config("demo", ["train.lora={rank: 8, target_modules: [q_proj, v_proj]}"])
    assert cfg.train.lora.rank == 8 and cfg.train.lora.target_modules == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="train.lora.rank"):
        load_config("demo", ["train.lora={rank: 0}"])
    with pytest.raises(ConfigError, match="target_modules"):
        load_config("demo", ["train.lora={target_modules: []}"])
