"""Loading an instruction set and normalising it to (id, system, instruction, response).

Local json / jsonl / parquet / arrow files and hub datasets are read with the
column presets of OpenOrca, Alpaca, ShareGPT and OpenAI-style messages, or an
explicit field map. Malformed rows are reported by file and row number; rows
with an empty instruction or response are skipped and counted.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profuser.config import DatasetConfig
from profuser.errors import UserError

CORE = ("id", "system", "instruction", "response")


@dataclass
class LoadReport:
    """What happened to the rows: kept, and skipped by reason."""

    rows_read: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)


def _iter_json(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not UTF-8 text (byte {exc.start}); re-encode the file as UTF-8"
        ) from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    stripped = text.lstrip()
    if path.suffix == ".json" and stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        yield from enumerate(rows, start=1)
        return
    # JSON Lines ends rows at "\n" only: str.splitlines() would also cut at U+0085, U+2028
    # and other separators that JSON strings may hold raw.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"{path}: row {lineno} is not valid JSON ({exc.msg}); expected one JSON object per line"
            ) from None


def _iter_table(path: Path) -> Iterator[tuple[int, Any]]:
    import datasets

    try:
        if path.is_dir():
            ds = datasets.load_from_disk(str(path))
        elif path.suffix == ".parquet":
            ds = datasets.Dataset.from_parquet(str(path))
        else:
            ds = datasets.Dataset.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file to the user
        raise UserError(
            f"{path}: cannot read as a {path.suffix or 'datasets'} table ({type(exc).__name__}); check the file format"
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        raise UserError(f"{path}: holds several splits; point dataset.path at one of {list(ds)}")
    yield from enumerate(ds, start=1)


def iter_raw_rows(cfg: DatasetConfig) -> Iterator[tuple[int, Any]]:
    """(row number, raw row) from a local file or a hub dataset."""
    path = Path(cfg.path).expanduser()
    if path.exists():
        if path.suffix in (".json", ".jsonl"):
            yield from _iter_json(path)
        elif path.suffix in (".parquet", ".arrow") or path.is_dir():
            yield from _iter_table(path)
        else:
            raise UserError(f"{path}: unsupported file type; use .json, .jsonl, .parquet or .arrow")
        return
    if cfg.path.startswith((".", "/", "~")) or Path(cfg.path).suffix:
        raise UserError(f"dataset.path {cfg.path!r}: file not found")
    import datasets

    try:
        ds = datasets.load_dataset(cfg.path, split=cfg.split)
    except Exception as exc:  # noqa: BLE001
        raise UserError(
            f"dataset {cfg.path!r} (split {cfg.split!r}) could not be loaded from the hub: {type(exc).__name__}; check the id or use a local file"
        ) from None
    yield from enumerate(ds, start=1)


def _text(row: dict, column: str, where: str, required: bool = True) -> str:
    if column not in row:
        if required:
            raise UserError(
                f"{where}: missing field {column!r}; check dataset.preset or dataset.fields"
            )
        return ""
    value = row[column]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserError(f"{where}: field {column!r} is {type(value).__name__}, expected a string")
    return value


ROLE_ALIASES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "bot": "assistant",
    "model": "assistant",
}


def _from_turns(turns: Any, where: str, role_key: str, text_key: str) -> tuple[str, str, str]:
    if not isinstance(turns, list):
        raise UserError(
            f"{where}: conversation must be a list of turns, got {type(turns).__name__}"
        )
    system, instruction, response = "", None, None
    for t in turns:
        if not isinstance(t, dict) or role_key not in t or text_key not in t:
            raise UserError(f"{where}: each turn needs {role_key!r} and {text_key!r} keys")
        role = ROLE_ALIASES.get(str(t[role_key]).lower())
        text = t[text_key]
        if not isinstance(text, str):
            raise UserError(
                f"{where}: turn {text_key!r} is {type(text).__name__}, expected a string"
            )
        if role == "system" and instruction is None:
            system = text
        elif role == "user" and instruction is None:
            instruction = text
        elif role == "assistant" and instruction is not None and response is None:
            response = text
    # Only the first exchange is used: the method fuses single-turn answers.
    return system, instruction or "", response or ""


def normalise_row(raw: Any, rownum: int, cfg: DatasetConfig, origin: str) -> dict[str, str]:
    """One raw row -> {id, system, instruction, response, **string extras}."""
    where = f"{origin}: row {rownum}"
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected an object with named fields, got {type(raw).__name__}")
    cols = cfg.columns()
    if cfg.preset == "sharegpt":
        system, instruction, response = _from_turns(
            raw.get(cols["conversations"]), where, "from", "value"
        )
    elif cfg.preset == "messages":
        system, instruction, response = _from_turns(
            raw.get(cols["messages"]), where, "role", "content"
        )
    else:
        instruction = _text(raw, cols["instruction"], where)
        if "input" in cols:
            extra = _text(raw, cols["input"], where, required=False)
            instruction = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        response = _text(raw, cols["response"], where)
        system = _text(raw, cols["system"], where, required=False) if "system" in cols else ""
    if cfg.id_field:
        rid = raw.get(cfg.id_field)
        if rid is None:
            raise UserError(f"{where}: missing id field {cfg.id_field!r}")
        rid = str(rid)
    else:
        rid = str(raw["id"]) if isinstance(raw.get("id"), str | int) else f"row-{rownum:08d}"
    used = set(cols.values()) | {cfg.id_field, "id"}
    extras = {
        k: v for k, v in raw.items() if k not in used and isinstance(v, str) and k not in CORE
    }
    return {"id": rid, "system": system, "instruction": instruction, "response": response, **extras}


def load_instructions(cfg: DatasetConfig) -> tuple[list[dict[str, str]], LoadReport]:
    """Read, validate and normalise the dataset; shuffle with ``cfg.seed`` and cut to ``cfg.limit``."""
    report = LoadReport()
    rows: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for rownum, raw in iter_raw_rows(cfg):
        report.rows_read += 1
        row = normalise_row(raw, rownum, cfg, cfg.path)
        if not row["instruction"].strip():
            report.skipped["empty instruction"] += 1
            continue
        if not row["response"].strip():
            report.skipped["empty response"] += 1
            continue
        if row["id"] in seen:
            raise UserError(
                f"{cfg.path}: row {rownum}: duplicate id {row['id']!r} (first at row {seen[row['id']]}); ids must be unique"
            )
        seen[row["id"]] = rownum
        rows.append(row)
    if report.rows_read == 0:
        raise UserError(f"{cfg.path}: the dataset has no rows")
    extra_keys = sorted({k for r in rows for k in r} - set(CORE))
    rows = [{**{k: "" for k in extra_keys}, **r} for r in rows]  # same columns in every row
    random.Random(cfg.seed).shuffle(rows)
    if cfg.limit is not None:
        rows = rows[: cfg.limit]
    report.kept = len(rows)
    if not rows:
        raise UserError(f"{cfg.path}: no usable rows (skipped: {dict(report.skipped)})")
    return rows, report
