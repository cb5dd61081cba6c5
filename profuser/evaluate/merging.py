"""Weight-merging baselines of the paper's Table 3 (section 5.4): SLERP, TIES and DARE.

The paper merges the CSFT target (vicuna-7b-v1.5-CSFT) with the same-architecture
source (Llama-2-7b-chat) using MergeKit. We do the same: `merge_models` drives
MergeKit through its Python API (`MergeConfiguration`, `run_merge`, `MergeOptions`;
install it with ``pip install 'profuser[merge]'``) after checking, without loading
any weights, that the two models can be merged at all.

Methods and their parameters (``params``; anything else is a `UserError`):

``slerp``
    Spherical linear interpolation from ``model_a`` (``t=0``) to ``model_b``
    (``t=1``), tensor by tensor. ``t`` defaults to 0.5. ``base`` is not used.
``ties``
    TIES-Merging (Yadav et al., 2023): task vectors ``model - base`` are trimmed to
    their largest-magnitude ``density`` fraction (default 0.5), a sign is elected per
    parameter, and the agreeing entries are averaged (``normalize``, default true)
    with ``weights`` (default ``(0.5, 0.5)`` for ``(model_a, model_b)``).
``dare``
    DARE (Yu et al., 2023): each task vector keeps a random ``density`` fraction
    (default 0.5) of its entries, drawn from ``seed``, rescaled so that the task
    vector keeps its L1 norm (MergeKit's rescale: ``1/density`` on average); the
    survivors are then combined TIES-style (``consensus="ties"``, the default,
    MergeKit's ``dare_ties``) or linearly (``consensus="linear"``, ``dare_linear``),
    with the same ``weights`` and ``normalize`` as TIES.

All methods also take ``dtype`` (the dtype MergeKit computes in, default
``"float32"``) and ``out_dtype`` (the saved dtype; default: ``model_a``'s own, else
float32).

The base for TIES and DARE: task vectors only mean something relative to a common
ancestor. In the paper that is Llama-2-7b (both vicuna-7b-v1.5 and Llama-2-7b-chat
were fine-tuned from it), so pass ``base="meta-llama/Llama-2-7b-hf"``. When no
``base`` is given (the tiny world has no common ancestor of the two models: pass
``model_a``'s weights before fine-tuning as ``base`` if you have them), ``model_a``
itself is the base. Its task vector is then zero, so the merge becomes "``model_a``
plus the trimmed (TIES) or dropped-and-rescaled (DARE) difference towards
``model_b``": a well-defined, documented degenerate case, in which with the default
``normalize=True`` only ``density`` matters (the weights cancel).

The output directory holds the merged weights, the config, ``model_a``'s tokenizer
and chat template and generation config, and ``merge_info.json`` (method, resolved
parameters, inputs, seed, MergeKit version); it loads with `AutoModelForCausalLM` and
`AutoTokenizer`. It is written to a temporary directory beside ``out_dir`` and
renamed into place, so an interrupted merge never leaves a half model.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profuser.errors import UserError
from profuser.evaluate.model_dirs import check_compatible, resolve_model_dir, saved_dtype

__all__ = ["MERGE_METHODS", "MergeMethod", "merge_models", "mergekit_available"]

_DTYPES = ("float32", "bfloat16", "float16")
_COMMON_DEFAULTS: dict[str, Any] = {"dtype": "float32", "out_dtype": None}


@dataclass(frozen=True)
class MergeMethod:
    """One merge method: its default parameters and how it becomes a MergeKit config."""

    name: str
    description: str
    defaults: Mapping[str, Any]
    build: Callable[[str, str, str | None, dict[str, Any]], dict[str, Any]] = field(repr=False)
    uses_base: bool = True


# --------------------------------------------------------------------------- parameters


def _number(method: str, key: str, value: Any, lo: float, hi: float, lo_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"merge {method}: {key} must be a number, got {value!r}")
    value = float(value)
    if value > hi or value < lo or (lo_open and value == lo):
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise UserError(f"merge {method}: {key}={value:g} is outside {interval}")
    return value


def _resolve_params(method: MergeMethod, params: Mapping[str, Any] | None) -> dict[str, Any]:
    allowed = {**_COMMON_DEFAULTS, **method.defaults}
    params = dict(params or {})
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise UserError(
            f"merge {method.name}: unknown parameter(s) {', '.join(unknown)}; "
            f"valid ones are {', '.join(sorted(allowed))}"
        )
    out = {**allowed, **params}
    name = method.name
    if "t" in out:
        out["t"] = _number(name, "t", out["t"], 0.0, 1.0, lo_open=False)
    if "density" in out:
        out["density"] = _number(name, "density", out["density"], 0.0, 1.0, lo_open=True)
    if "weights" in out:
        w = out["weights"]
        if isinstance(w, str) or not hasattr(w, "__len__") or len(w) != 2:
            raise UserError(
                f"merge {name}: weights must be two numbers (model_a, model_b), got {w!r}"
            )
        out["weights"] = [
            _number(name, "weights", x, float("-inf"), float("inf"), False) for x in w
        ]
    if "normalize" in out and not isinstance(out["normalize"], bool):
        raise UserError(f"merge {name}: normalize must be true or false, got {out['normalize']!r}")
    if "consensus" in out and out["consensus"] not in ("ties", "linear"):
        raise UserError(
            f"merge {name}: consensus must be 'ties' or 'linear', got {out['consensus']!r}"
        )
    for key in ("dtype", "out_dtype"):
        if out[key] is not None and out[key] not in _DTYPES:
            raise UserError(
                f"merge {name}: {key} must be one of {', '.join(_DTYPES)}, got {out[key]!r}"
            )
    return out


# --------------------------------------------------------------------------- configs


def _slerp_config(a: str, b: str, base: str | None, p: dict[str, Any]) -> dict[str, Any]:
    # MergeKit's SLERP interpolates from its base_model (t=0) to the other model (t=1).
    return {
        "merge_method": "slerp",
        "base_model": a,
        "models": [{"model": a}, {"model": b}],
        "parameters": {"t": p["t"]},
    }


def _task_vector_models(a: str, b: str, base: str | None, p: dict[str, Any]) -> dict[str, Any]:
    wa, wb = p["weights"]
    b_entry = {"model": b, "parameters": {"density": p["density"], "weight": wb}}
    if base is None:  # model_a is the base: its task vector is zero
        models = [{"model": a}, b_entry]
        base = a
    else:
        models = [{"model": a, "parameters": {"density": p["density"], "weight": wa}}, b_entry]
    return {"base_model": base, "models": models, "parameters": {"normalize": p["normalize"]}}


def _ties_config(a: str, b: str, base: str | None, p: dict[str, Any]) -> dict[str, Any]:
    return {"merge_method": "ties", **_task_vector_models(a, b, base, p)}


def _dare_config(a: str, b: str, base: str | None, p: dict[str, Any]) -> dict[str, Any]:
    method = "dare_ties" if p["consensus"] == "ties" else "dare_linear"
    return {"merge_method": method, **_task_vector_models(a, b, base, p)}


MERGE_METHODS: dict[str, MergeMethod] = {
    "slerp": MergeMethod(
        name="slerp",
        description="spherical interpolation from model_a (t=0) to model_b (t=1)",
        defaults={"t": 0.5},
        build=_slerp_config,
        uses_base=False,
    ),
    "ties": MergeMethod(
        name="ties",
        description="TIES: trim task vectors by magnitude, elect signs, disjoint mean",
        defaults={"density": 0.5, "weights": (0.5, 0.5), "normalize": True},
        build=_ties_config,
    ),
    "dare": MergeMethod(
        name="dare",
        description="DARE: random drop with 1/density rescale, then TIES or linear combination",
        defaults={"density": 0.5, "weights": (0.5, 0.5), "normalize": True, "consensus": "ties"},
        build=_dare_config,
    ),
}


# --------------------------------------------------------------------------- inputs


def _install(tmp: Path, out_dir: Path) -> None:
    """Rename ``tmp`` to ``out_dir``, replacing an earlier merge output there."""
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        return
    if not out_dir.is_dir() or (
        any(out_dir.iterdir()) and not (out_dir / "merge_info.json").is_file()
    ):
        raise UserError(
            f"output {str(out_dir)!r} exists and is not an earlier merge output; "
            "remove it or choose another out_dir"
        )
    old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def mergekit_available() -> bool:
    """Whether MergeKit (the ``merge`` extra) is installed; imports nothing."""
    import importlib.util

    return importlib.util.find_spec("mergekit") is not None


def _run_mergekit(config: dict[str, Any], out_path: Path, seed: int) -> str:
    """Run MergeKit on ``config``; leave the caller's random states as they were."""
    try:
        with warnings.catch_warnings():  # MergeKit imports numpy.core (deprecated)
            warnings.simplefilter("ignore", DeprecationWarning)
            import mergekit  # noqa: F401
            from mergekit.config import MergeConfiguration
            from mergekit.merge import run_merge
            from mergekit.options import MergeOptions
    except ImportError:
        raise UserError(
            "weight merging (slerp/ties/dare) needs MergeKit: pip install 'profuser[merge]'"
        ) from None
    from importlib.metadata import PackageNotFoundError, version

    import numpy as np
    import torch

    try:
        mk_version = version("mergekit")
    except PackageNotFoundError:  # pragma: no cover - an uninstalled source checkout
        mk_version = "unknown"
    merge_config = MergeConfiguration.model_validate(config)
    options = MergeOptions(
        random_seed=seed,  # MergeKit seeds python, numpy and torch (DARE's drops) with it
        copy_tokenizer=False,  # model_a's tokenizer is saved below, not the base's
        write_model_card=False,
        quiet=True,
        lazy_unpickle=True,
    )
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            run_merge(merge_config, out_path=str(out_path), options=options)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return mk_version


def merge_models(
    method: str,
    model_a: str | Path,
    model_b: str | Path,
    out_dir: Path,
    *,
    base: str | Path | None = None,
    params: dict | None = None,
    seed: int = 0,
) -> Path:
    """Merge ``model_b`` into ``model_a`` with ``method`` and save the result to ``out_dir``.

    ``model_a`` is the model whose tokenizer, chat template and generation config the
    output keeps (the paper's CSFT target); ``model_b`` the same-architecture source.
    ``base`` is the common ancestor for TIES/DARE (default: ``model_a``; see the module
    docstring); SLERP ignores it. ``params`` overrides the method's defaults
    (`MERGE_METHODS[method].defaults`); ``seed`` makes DARE's random drops
    reproducible. Models are local directories or hub ids. Returns ``out_dir``.

    Raises `UserError` for an unknown method or parameter, a missing model, or two
    models whose architectures or tensor shapes differ (naming the first mismatch).
    """
    if method not in MERGE_METHODS:
        raise UserError(
            f"unknown merge method {method!r}; choose one of {', '.join(MERGE_METHODS)}"
        )
    spec = MERGE_METHODS[method]
    p = _resolve_params(spec, params)
    dir_a = resolve_model_dir(model_a, "model_a")
    dir_b = resolve_model_dir(model_b, "model_b")
    cfg_a, _ = check_compatible(dir_a, dir_b, "model_b")
    dir_base: Path | None = None
    if base is not None and spec.uses_base:
        dir_base = resolve_model_dir(base, "base")
        if dir_base == dir_a:
            dir_base = None  # the documented default, spelled out
        else:
            check_compatible(dir_a, dir_base, "base")

    config = spec.build(str(dir_a), str(dir_b), None if dir_base is None else str(dir_base), p)
    config["dtype"] = p["dtype"]
    config["out_dtype"] = p["out_dtype"] or saved_dtype(cfg_a)

    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(dir_a))
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot load model_a's tokenizer from {str(dir_a)!r}: {str(exc).splitlines()[0]}"
        ) from None

    out_dir = Path(out_dir).expanduser()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        mk_version = _run_mergekit(config, tmp, seed)
        tokenizer.save_pretrained(str(tmp))
        if (dir_a / "generation_config.json").is_file():
            shutil.copyfile(dir_a / "generation_config.json", tmp / "generation_config.json")
        info = {
            "method": method,
            "mergekit_method": config["merge_method"],
            "params": p | {"out_dtype": config["out_dtype"]},
            "model_a": str(model_a),
            "model_b": str(model_b),
            "base": None if not spec.uses_base else str(base if dir_base else model_a),
            "seed": seed,
            "mergekit_version": mk_version,
        }
        (tmp / "merge_info.json").write_text(json.dumps(info, indent=1, default=str) + "\n")
        _install(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
