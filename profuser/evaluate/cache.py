"""A content-addressed cache of eval records, shared by every run on one machine.

The same model is evaluated again and again: every run of a study evaluates the same
sources, and a run repeated with the same seed trains the same weights. A record is
reused only when everything it depends on is identical: every file of the model's
directory (weights, config, tokenizer, chat template), the template named for it, its
dtype, the tasks and every eval setting, the seed, the versions of lm-eval, transformers
and torch, and the code that scores (every registered task suite's folder, see
:mod:`profuser.evaluate.tasks`, and the modules that run lm-eval and read its items). A model given by hub id, not by a
directory, is never cached: its files cannot be read to key it.

Records live under ``$PROFUSER_EVAL_CACHE``, else ``$PROFUSER_CACHE/eval`` (default
``~/.cache/profuser/eval``), one JSON file per key; ``eval.cache: false`` turns the cache off for a run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from profuser.io import atomic_write_json, cache_root, read_json

_CODE = ("harness.py", "items.py", "tasks.py")
log = logging.getLogger("profuser")


def cache_dir() -> Path:
    """``$PROFUSER_EVAL_CACHE``, else ``$PROFUSER_CACHE/eval``, else ``~/.cache/profuser/eval``."""
    if os.environ.get("PROFUSER_EVAL_CACHE"):
        return Path(os.environ["PROFUSER_EVAL_CACHE"])
    return cache_root() / "eval"


def _digest_files(h: Any, root: Path, files: list[Path]) -> None:
    for f in sorted(files):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        with f.open("rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())


def _code_digest() -> str:
    from profuser.evaluate.tasks import TASK_SUITES

    package = Path(__file__).parent
    h = hashlib.sha256()
    for name in sorted(TASK_SUITES):
        root = TASK_SUITES[name].include_dir
        h.update(name.encode() + b"\0")
        _digest_files(
            h, root, [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        )
    _digest_files(h, package, [package / name for name in _CODE])
    return h.hexdigest()


def record_key(model_dir: str, identity: dict[str, Any]) -> str | None:
    """The cache key of one model's eval under ``identity`` (tasks, settings, template...);
    None when ``model_dir`` is not a local directory."""
    root = Path(model_dir)
    if not root.is_dir():
        return None
    import lm_eval
    import torch
    import transformers

    h = hashlib.sha256()
    _digest_files(h, root, [p for p in root.rglob("*") if p.is_file()])
    versions = {
        "lm_eval": lm_eval.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    blob = json.dumps({"identity": identity, "versions": versions}, sort_keys=True, default=str)
    h.update(blob.encode())
    h.update(_code_digest().encode())
    return h.hexdigest()[:24]


def load(key: str | None) -> dict | None:
    """The cached record for ``key``, or None."""
    return None if key is None else read_json(cache_dir() / f"{key}.json")


def store(key: str | None, record: dict) -> None:
    """Keep ``record`` under ``key`` (nothing when ``key`` is None). A cache that cannot be
    written costs a warning, never the record: the run directory holds it either way."""
    if key is None:
        return
    try:
        atomic_write_json(cache_dir() / f"{key}.json", record)
    except OSError as exc:
        log.warning("eval cache %s not written (%s); set PROFUSER_EVAL_CACHE", cache_dir(), exc)
