"""The on-disk form of a distribution shard: log-prob codes, narrow ids, Arrow tables.

:mod:`profuser.teacher.storage` writes and reads whole stores (shards, manifest,
resume); this module holds what one shard looks like: the stored dtypes and
their errors (see the store's docstring), and the conversion between buffered
examples (:class:`Record`) and ``list<list<...>>`` Arrow tables / Parquet files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

Q8_RANGE = 20.0
Q8_STEP = Q8_RANGE / 255.0
LOGPROB_FORMATS = ("fp16", "q8")
RESERVED_COLUMNS = ("example_id", "ids", "logprobs")
# Higher zstd levels gained nothing measurable on top-k data (ids are near-random bits).
_ZSTD_LEVEL = 3
_SCALAR_TYPES = {
    "bool": pa.bool_(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
}


def id_dtype(vocab_size: int) -> np.dtype:
    """Narrowest signed integer dtype that holds every id ``0..vocab_size-1`` and -1."""
    for dtype in (np.int8, np.int16, np.int32):
        if vocab_size - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"vocab_size {vocab_size} does not fit in int32")


def encode_logprobs(logprobs: np.ndarray, logprob_format: str) -> np.ndarray:
    """Log-probs (float, <= 0) to their stored form: float16, or uint8 codes for q8."""
    if logprob_format == "fp16":
        return logprobs.astype(np.float16)
    codes = np.rint(np.clip(-logprobs.astype(np.float64), 0.0, Q8_RANGE) / Q8_STEP)
    return codes.astype(np.uint8)


def decode_logprobs(stored: np.ndarray, logprob_format: str) -> np.ndarray:
    """Stored log-probs (as read from a shard or a ``datasets`` row) back to float32."""
    if logprob_format == "fp16":
        return np.asarray(stored, dtype=np.float32)
    return (np.asarray(stored, dtype=np.float32) * np.float32(-Q8_STEP)).astype(np.float32)


def _list2(item: pa.DataType) -> pa.DataType:
    inner = pa.list_(pa.field("element", item, nullable=False))
    return pa.list_(pa.field("element", inner, nullable=False))


class Record(NamedTuple):
    """One example in stored form; ``counts`` ``[n]`` kept candidates per position."""

    example_id: str
    counts: np.ndarray
    ids: np.ndarray  # [sum(counts)] id dtype
    logprobs: np.ndarray  # [sum(counts)] float16 or uint8
    scalars: dict[str, Any]


def scalar_type_name(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int64"
    if isinstance(value, (float, np.floating)):
        return "float64"
    if isinstance(value, str):
        return "string"
    raise TypeError(f"scalar column value {value!r} is not a bool, int, float or str")


def write_parquet(table: pa.Table, path: Path, logprob_format: str) -> None:
    """Write one shard: zstd, byte-stream-split ids (and fp16 log-probs), v1 data pages."""
    ids_col = "ids.list.element.list.element"
    lp_col = "logprobs.list.element.list.element"
    # Byte-stream split puts the always-zero high bytes of int32-stored ids and the
    # sign/exponent bytes of float16 into their own streams, which zstd all but
    # erases; dictionaries lose here because a shard sees most of a 32k vocabulary.
    encodings = {ids_col: "BYTE_STREAM_SPLIT"}
    dictionary = [c for c in table.schema.names if c not in RESERVED_COLUMNS]
    if logprob_format == "fp16":
        encodings[lp_col] = "BYTE_STREAM_SPLIT"
    else:
        dictionary.append(lp_col)  # 256 codes: a dictionary is always small
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=_ZSTD_LEVEL,
        use_dictionary=dictionary,
        column_encoding=encodings,
        data_page_version="1.0",  # v1 pages compress the nested-list levels too
    )


def records_to_table(
    records: list[Record], ids_dtype: np.dtype, logprob_format: str, scalar_columns: dict
) -> pa.Table:
    """Buffered examples to one shard's table (example_id, ids, logprobs, scalar columns)."""
    counts = np.concatenate([r.counts for r in records]) if records else np.zeros(0, np.int32)
    inner_offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=inner_offsets[1:])
    outer_offsets = np.zeros(len(records) + 1, dtype=np.int32)
    np.cumsum([len(r.counts) for r in records], out=outer_offsets[1:])
    lp_type = pa.float16() if logprob_format == "fp16" else pa.uint8()
    id_type = pa.from_numpy_dtype(ids_dtype)
    columns: dict[str, pa.Array] = {"example_id": pa.array([r.example_id for r in records])}
    for name, values, item in (
        ("ids", np.concatenate([r.ids for r in records]), id_type),
        ("logprobs", np.concatenate([r.logprobs for r in records]), lp_type),
    ):
        list_type = _list2(item)
        inner = pa.ListArray.from_arrays(
            inner_offsets, pa.array(values, type=item), type=list_type.value_type
        )
        columns[name] = pa.ListArray.from_arrays(outer_offsets, inner, type=list_type)
    fields = [
        pa.field("example_id", pa.string(), nullable=False),
        pa.field("ids", _list2(id_type), nullable=False),
        pa.field("logprobs", _list2(lp_type), nullable=False),
    ]
    for name, type_name in scalar_columns.items():
        columns[name] = pa.array([r.scalars[name] for r in records], type=_SCALAR_TYPES[type_name])
        fields.append(pa.field(name, _SCALAR_TYPES[type_name]))
    schema = pa.schema(fields)
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def _nested_parts(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(outer offsets [rows+1], inner offsets [positions+1], flat values)`` of a list<list<>>."""
    outer = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    # Slices of a ListArray keep absolute offsets into the parent's values, which is what we index.
    inner = outer.values
    return (
        outer.offsets.to_numpy(),
        inner.offsets.to_numpy(),
        inner.values.to_numpy(zero_copy_only=False),
    )


def records_from_table(table: pa.Table) -> Iterator[Record]:
    """A shard's table back to examples in stored form, in row order."""
    outer, inner, ids = _nested_parts(table.column("ids"))
    _, _, logprobs = _nested_parts(table.column("logprobs"))
    scalar_names = [n for n in table.schema.names if n not in RESERVED_COLUMNS]
    scalars = {n: table.column(n).to_pylist() for n in scalar_names}
    for row, example_id in enumerate(table.column("example_id").to_pylist()):
        row_inner = inner[outer[row] : outer[row + 1] + 1]  # offsets of this row's positions
        start, stop = row_inner[0], row_inner[-1]
        yield Record(
            example_id=example_id,
            counts=np.diff(row_inner).astype(np.int32),
            ids=ids[start:stop],
            logprobs=logprobs[start:stop],
            scalars={n: scalars[n][row] for n in scalar_names},
        )


MANIFEST = "manifest.json"
FORMAT_NAME = "profuser-distributions"
FORMAT_VERSION = 1


def padded_baseline_bytes(num_examples: int, k: int = 10, max_len: int = 2048) -> int:
    """Bytes of FuseLLM's layout: per position k fp16 values + k int64 ids, padded to max_len."""
    return num_examples * max_len * k * (2 + 8)


class StoredDistribution(NamedTuple):
    """One example read back: ``ids`` int64 ``[n, k]`` (-1 = empty), ``logprobs``
    float32 ``[n, k]`` (-inf = empty), and the scalar columns."""

    example_id: str
    ids: np.ndarray
    logprobs: np.ndarray
    scalars: dict[str, Any]


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a {FORMAT_NAME} manifest")
    return manifest
