"""The config checks that look at files, without loading any weights (see profuser.config_checks).

Model paths: a path of a registered scheme (``world:...``) is left to its scheme; else an
existing local directory is fine, and so is a missing one that looks like a hub id
(``org/name``). A local model directory must bring a chat template where the model is
prompted with one (sources, the target, reward models that apply one) unless the config
names one. The dataset file must exist and its first rows must hold the fields its preset
(or ``dataset.fields``) reads. Rows the data stage would reject for their content (bad
JSON, a wrong type, a duplicate id) are left to the data stage, which names the row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profuser.config import COLUMN_PRESETS, DatasetConfig, RunConfig
from profuser.models.chat_templates import CHAT_TEMPLATES
from profuser.paths import split_scheme
from profuser.reward.value_head import DEFAULT_HEAD_FILES

# Reward-model kinds whose loader prompts through the tokenizer's chat template
# (profuser.reward.hf.load_rm_tokenizer): their own, else the one the config names.
CHAT_KINDS = ("seq_cls", "custom_code", "value_head")
DATA_SUFFIXES = (".json", ".jsonl", ".parquet", ".arrow")
HEAD_ROWS = 5  # dataset rows looked at
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")
_NOT_FOUND = "not found; a local path must exist, and a hub id looks like org/name"


@dataclass(frozen=True)
class Problem:
    """One problem with one config field, printed as one line by :meth:`line`."""

    field: str  # dotted, with list indices: `sources.2.path`
    value: Any
    what: str
    choices: Sequence[str] = ()
    label: str = "choose one of"

    def line(self, origin: str) -> str:
        text = f"{origin}: `{self.field}` = {self.value!r}: {self.what}"
        if self.choices:
            text += f"; {self.label} {', '.join(str(c) for c in self.choices)}"
        return " ".join(text.splitlines())


def looks_like_hub_id(path: str) -> bool:
    """``org/name``: exactly one slash, no leading ``/``, ``.`` or ``~``."""
    return bool(_HUB_ID.fullmatch(path)) and ".." not in path


def model_dir(field: str, path: str) -> tuple[Path | None, list[Problem]]:
    """(the local directory ``path`` names, or None for a scheme path or hub id; problems)."""
    if split_scheme(path):
        return None, []
    p = Path(path).expanduser()
    if p.is_dir():
        return p, []
    if p.exists():
        return None, [Problem(field, path, "is a file; a model path is a directory or a hub id")]
    if looks_like_hub_id(path):
        return None, []
    return None, [Problem(field, path, _NOT_FOUND)]


def has_chat_template(folder: Path) -> bool:
    """Whether the tokenizer saved in ``folder`` brings its own chat template."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        tc = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(tc, dict) and bool(tc.get("chat_template"))


def _no_template(field: str, folder: Path) -> Problem:
    return Problem(
        field,
        None,
        f"the tokenizer in {str(folder)!r} has no chat template; name one",
        sorted(CHAT_TEMPLATES),
    )


def _value_head(i: int, rm: Any, folder: Path) -> list[Problem]:
    field = f"reward_models.{i}.value_head_file"
    present = sorted(
        f.name for f in folder.iterdir() if f.suffix in (".safetensors", ".bin", ".pt", ".pth")
    )
    label = "files there:" if present else ""
    if rm.value_head_file is None:
        if any((folder / f).is_file() for f in DEFAULT_HEAD_FILES):
            return []
        what = (
            f"kind value_head needs the state dict holding v_head.weight, none in {str(folder)!r}"
        )
        return [Problem(field, None, what, present, label)]
    given = Path(rm.value_head_file).expanduser()
    if given.is_file() or (folder / rm.value_head_file).is_file():
        return []
    what = f"not found (looked as given and in {str(folder)!r})"
    return [Problem(field, rm.value_head_file, what, present, label)]


def model_problems(cfg: RunConfig) -> list[Problem]:
    """Sources, the target and reward models: paths, chat templates, value heads."""
    out: list[Problem] = []
    for i, s in enumerate(cfg.sources):
        folder, bad = model_dir(f"sources.{i}.path", s.path)
        out += bad
        if folder and s.chat_template is None and not has_chat_template(folder):
            out.append(_no_template(f"sources.{i}.chat_template", folder))
    if cfg.target_path:
        folder, bad = model_dir("target_path", cfg.target_path)
        out += bad
        base = next((j for j, s in enumerate(cfg.sources) if s.name == cfg.target), None)
        if folder and not has_chat_template(folder):
            if base is None:
                what = (
                    f"the tokenizer there has no chat template and no source named "
                    f"{cfg.target!r} names one; add a source of that name with chat_template"
                )
                out.append(Problem("target_path", cfg.target_path, what, sorted(CHAT_TEMPLATES)))
            elif cfg.sources[base].chat_template is None:
                out.append(_no_template(f"sources.{base}.chat_template", folder))
    for i, r in enumerate(cfg.reward_models):
        if not r.path:
            continue
        folder, bad = model_dir(f"reward_models.{i}.path", r.path)
        out += bad
        if folder is None:
            continue
        if r.kind in CHAT_KINDS and r.chat_template is None and not has_chat_template(folder):
            out.append(_no_template(f"reward_models.{i}.chat_template", folder))
        if r.kind == "value_head":
            out += _value_head(i, r, folder)
    return out


# ---------------------------------------------------------------------------------------------
# The dataset: the file, and the fields its first rows hold
# ---------------------------------------------------------------------------------------------


def _jsonl_head(path: Path) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    # JSON Lines ends rows at "\n" only, as profuser.data reads it.
    with path.open(encoding="utf-8", newline="\n") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                rows.append((f"row {lineno}", json.loads(line)))
            if len(rows) >= HEAD_ROWS:
                break
    return rows


def _json_array_head(text: str) -> list[tuple[str, Any]]:
    decoder, rows = json.JSONDecoder(), []
    i = text.index("[") + 1
    while len(rows) < HEAD_ROWS:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text) or text[i] == "]":
            break
        try:
            row, i = decoder.raw_decode(text, i)
        except ValueError:  # cut off by the read limit, or malformed: the data stage says
            break
        rows.append((f"row {len(rows) + 1}", row))
    return rows


def _columns(names: list[str]) -> list[tuple[str, Any]]:
    return [("columns", dict.fromkeys(names))]


def first_rows(path: Path) -> list[tuple[str, Any]]:
    """(where, row) of the first few rows of a local dataset; [] where they cannot be read
    cheaply or are malformed (the data stage reports those by row)."""
    try:
        if path.is_dir():  # datasets.save_to_disk: its features name the columns
            info = json.loads((path / "dataset_info.json").read_text(encoding="utf-8"))
            return _columns(list(info.get("features") or {}))
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return _columns(pq.read_schema(path).names)
        if path.suffix == ".arrow":
            import pyarrow as pa

            with pa.memory_map(str(path)) as src:
                return _columns(pa.ipc.open_stream(src).schema.names)
        with path.open(encoding="utf-8") as f:
            head = f.read(1 << 20)
        if path.suffix == ".json" and head.lstrip().startswith("["):
            return _json_array_head(head)
        return _jsonl_head(path)
    except Exception:  # noqa: BLE001 - unreadable here: left to the data stage's reader
        return []


def _needed(ds: DatasetConfig) -> list[tuple[str, Any, str]]:
    """(config field, its value, dataset column) for every column the rows must hold."""
    cols = ds.columns()
    if ds.preset == "fields":
        need = [(f"dataset.fields.{k}", cols[k], cols[k]) for k in ("instruction", "response")]
    else:
        keys = [k for k in ("instruction", "response", "conversations", "messages") if k in cols]
        need = [("dataset.preset", ds.preset, cols[k]) for k in keys]
    if ds.id_field:
        need.append(("dataset.id_field", ds.id_field, ds.id_field))
    return need


def _matching_presets(row: dict) -> list[str]:
    optional = {"system", "input"}
    return [
        name
        for name, cols in COLUMN_PRESETS.items()
        if all(col in row for key, col in cols.items() if key not in optional)
    ]


def dataset_problems(ds: DatasetConfig) -> list[Problem]:
    """The dataset file exists and its first rows hold the fields the config reads."""
    if split_scheme(ds.path):
        return []
    path = Path(ds.path).expanduser()
    if path.is_file() and path.suffix not in DATA_SUFFIXES:
        return [Problem("dataset.path", ds.path, "unsupported file type", DATA_SUFFIXES)]
    if path.is_dir() and path.suffix in (".json", ".jsonl"):
        return [Problem("dataset.path", ds.path, "is a directory, not a JSON file")]
    if not path.exists():
        if ds.path.startswith((".", "/", "~")) or path.suffix:  # a file name, as profuser.data
            return [Problem("dataset.path", ds.path, "file not found", DATA_SUFFIXES, "a file of")]
        if looks_like_hub_id(ds.path):
            return []
        return [Problem("dataset.path", ds.path, _NOT_FOUND)]
    for where, row in first_rows(path):
        if not isinstance(row, dict):
            return []  # the data stage names the row that is not an object
        for field, value, column in _needed(ds):
            if column not in row:
                match = [p for p in _matching_presets(row) if p != ds.preset]
                hint = f" (preset {match[0]!r} would match)" if match else ""
                what = f"{ds.path} {where}: missing field {column!r}{hint}"
                return [Problem(field, value, what, sorted(row) or ["none"], "fields present:")]
    return []
