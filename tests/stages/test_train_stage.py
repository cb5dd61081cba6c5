"""The train stage keeps what it trained when the variant list changes."""

from pathlib import Path

from profuser.config import load_config
from profuser.io import read_json
from profuser.pipeline import run_pipeline
from tests.stages.test_end_to_end import _config

UPSTREAM = ("data", "select", "generate", "score", "teacher", "align", "train")


def _run(cfg_path: Path, out: Path, *overrides: str) -> dict:
    cfg = load_config(cfg_path, ["merges=[]", *overrides])
    for name in UPSTREAM:
        run_pipeline(cfg, out, only=name)
    return read_json(out / "train" / "manifest.json")


def test_adding_a_variant_trains_only_the_new_one(mini_world: Path, tmp_path: Path) -> None:
    cfg = _config(mini_world, tmp_path)
    out = tmp_path / "run"
    first = _run(cfg, out, "variants=[csft]")
    assert set(first["summary"]["variants"]) == {"profuser", "csft"}
    weights = out / "train" / "csft" / "final" / "model.safetensors"
    before = (weights.stat().st_ino, weights.read_bytes())
    keys = {v: read_json(out / "train" / v / "variant.json")["key"] for v in ("profuser", "csft")}

    second = _run(cfg, out, "variants=[csft, fuse]")
    assert second["fingerprint"] != first["fingerprint"]  # the stage did run again ...
    done = second["summary"]["variants"]
    assert done["profuser"] == done["csft"] == {"done": True}  # ... and reused both
    assert "steps" in done["fuse"]
    assert (weights.stat().st_ino, weights.read_bytes()) == before
    assert read_json(out / "train" / "fuse" / "variant.json")["key"] not in keys.values()

    # Another learning rate changes every variant's key: nothing is reused.
    third = _run(cfg, out, "variants=[csft]", "train.lr=0.002")
    assert all("steps" in v for v in third["summary"]["variants"].values())
    assert read_json(out / "train" / "csft" / "variant.json")["key"] != keys["csft"]
