import torch

from profuser.config import load_config
from profuser.configs import config_path
from profuser.stages.train import variant_schedules
from profuser.train.determinism import reproducible_attention

DEMO = config_path("demo")


def test_reproducible_attention_selects_the_math_kernel_and_restores() -> None:
    before = torch.backends.cuda.flash_sdp_enabled()
    with reproducible_attention(True):
        assert torch.backends.cuda.math_sdp_enabled()
        assert not torch.backends.cuda.flash_sdp_enabled()
        assert not torch.backends.cuda.mem_efficient_sdp_enabled()
    assert torch.backends.cuda.flash_sdp_enabled() == before
    with reproducible_attention(False):
        assert torch.backends.cuda.flash_sdp_enabled() == before


def test_reproducible_attention_computes_the_same_attention() -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 16, 8, generator=g) for _ in range(3))
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    with reproducible_attention(True):
        plain = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(plain, fused, rtol=1e-5, atol=1e-6)


def test_epoch_scale_multiplies_every_phase_of_every_variant() -> None:
    base = load_config(DEMO, ["variants=[csft, simulfuse]", "train.epoch_scale=1"])
    scaled = load_config(DEMO, ["variants=[csft, simulfuse]", "train.epoch_scale=4"])
    plain, times4 = variant_schedules(base), variant_schedules(scaled)
    assert plain.keys() == times4.keys() == {"profuser", "csft", "simulfuse"}
    for name, phases in plain.items():
        assert [4 * p.epochs for p in phases] == [p.epochs for p in times4[name]]
        assert [p.model_copy(update={"epochs": 0}) for p in phases] == [
            p.model_copy(update={"epochs": 0}) for p in times4[name]
        ]
