"""Checks on the model directories a merge reads: they exist, hold a config and weights,
and share an architecture and tensor shapes (each failure one line naming what differs)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from profuser.errors import UserError

SAVED_DTYPES = ("float32", "bfloat16", "float16")


def resolve_model_dir(path: str | Path, what: str) -> Path:
    """A local model directory, or a hub id resolved through the Hugging Face cache."""
    text = str(path)
    local = Path(text).expanduser()
    if local.is_dir():
        return local.resolve()
    if text.startswith((".", "/", "~")) or local.exists() or text.count("/") > 1:
        raise UserError(f"{what} directory {text!r} not found; check the path")
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.jinja", "*.model", "tokenizer*", "*.txt"]
    try:
        found = Path(snapshot_download(text, allow_patterns=[*patterns, "*.safetensors"]))
        if not any(found.glob("*.safetensors")):
            found = Path(snapshot_download(text, allow_patterns=[*patterns, "*.bin"]))
    except Exception as exc:  # offline, unknown repo, gated repo, network: all one message
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"cannot fetch {what} {text!r} from the Hugging Face hub: {first}"
        ) from None
    return found


def read_config(model_dir: Path, what: str) -> dict[str, Any]:
    cfg = model_dir / "config.json"
    if not cfg.is_file():
        raise UserError(f"{what} {str(model_dir)!r} has no config.json; is it a model directory?")
    return json.loads(cfg.read_text(encoding="utf-8"))


def tensor_shapes(model_dir: Path, what: str) -> dict[str, tuple[int, ...]]:
    """Every weight's shape, read from the checkpoint headers (no weights are loaded)."""
    shapes: dict[str, tuple[int, ...]] = {}
    st_files = sorted(model_dir.glob("*.safetensors"))
    if st_files:
        from safetensors import safe_open

        for f in st_files:
            with safe_open(str(f), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 (safe_open is not a Mapping)
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
        return shapes
    bin_files = sorted(model_dir.glob("pytorch_model*.bin"))
    if bin_files:
        import torch

        for f in bin_files:
            state = torch.load(f, map_location="cpu", mmap=True, weights_only=True)
            shapes.update({k: tuple(v.shape) for k, v in state.items()})
            del state
        return shapes
    raise UserError(f"{what} {str(model_dir)!r} has no *.safetensors or pytorch_model*.bin weights")


STRUCTURE_KEYS = ("model_type", "architectures", "num_attention_heads", "num_key_value_heads")


def check_compatible(
    dir_a: Path, dir_b: Path, what_b: str
) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """Raise a one-line `UserError` naming the first difference between two models."""
    cfg_a, cfg_b = read_config(dir_a, "model_a"), read_config(dir_b, what_b)
    for key in STRUCTURE_KEYS:
        va, vb = cfg_a.get(key), cfg_b.get(key)
        if va != vb and va is not None and vb is not None:
            raise UserError(
                f"cannot merge {what_b} into model_a: config {key} is {vb!r} in {str(dir_b)!r} "
                f"but {va!r} in {str(dir_a)!r}; weight merging needs the same architecture"
            )
    shapes_a, shapes_b = tensor_shapes(dir_a, "model_a"), tensor_shapes(dir_b, what_b)
    for name in sorted(set(shapes_a) | set(shapes_b)):
        sa, sb = shapes_a.get(name), shapes_b.get(name)
        if sa == sb:
            continue
        if sa is None or sb is None:
            where, missing = (str(dir_a), "model_a") if sa is None else (str(dir_b), what_b)
            raise UserError(
                f"cannot merge {what_b} into model_a: tensor {name!r} is missing from "
                f"{missing} ({where!r}); weight merging needs the same architecture"
            )
        raise UserError(
            f"cannot merge {what_b} into model_a: tensor {name!r} has shape {list(sb)} in "
            f"{str(dir_b)!r} but {list(sa)} in {str(dir_a)!r}"
        )
    return cfg_a, shapes_a


def saved_dtype(cfg: Mapping[str, Any]) -> str:
    dtype = cfg.get("dtype") or cfg.get("torch_dtype")
    return dtype if dtype in SAVED_DTYPES else "float32"


# --------------------------------------------------------------------------- output
