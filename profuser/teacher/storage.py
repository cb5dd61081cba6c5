"""Ragged, sharded, resumable storage of per-example top-k token distributions.

Layout of a store directory::

    manifest.json           settings + completed shards (written atomically, last)
    shard-00000.parquet     rows 0 .. shard_size-1
    shard-00001.parquet     ...

One Parquet row per example: ``example_id`` (string), ``ids`` and ``logprobs``
(``list<list<...>>``: one inner list per response position holding only the
kept candidates, best first; positions where top-p kept fewer than k tokens
have shorter inner lists, nothing is padded), plus any scalar columns the
caller adds (``ce``, ``source``, ...). Open it with ``datasets``
(:meth:`DistributionReader.as_dataset`) or any Parquet reader.

* ids use the narrowest signed type that holds ``vocab_size - 1`` (int8, int16
  or int32); signed so user code can still pad with -1.
* ``logprob_format="fp16"``: float16 log-probs; error <= ``|logprob| * 2**-11``
  (round-to-nearest, 11 significant bits).
* ``logprob_format="q8"``: uint8 code ``q = round(-logprob / Q8_STEP)`` with
  ``Q8_STEP = Q8_RANGE / 255`` and ``Q8_RANGE = 20`` nats, decoded as
  ``-q * Q8_STEP``; error <= ``Q8_STEP / 2`` (about 0.039 nats, i.e. 4% relative
  on the probability) for log-probs >= -20. Lower log-probs (p < 2.1e-9) clamp to -20.

Shards are zstd-compressed Parquet with byte-stream-split ids (and fp16
log-probs), which needs a Parquet 2.11 reader (pyarrow >= 17, as ``datasets`` uses).
At k = 10 and a 32k vocabulary this is about 32 bytes/token for fp16 and 27 for
q8 when ids are uniformly random (the worst case), less on real LM candidates.

Shards are complete or absent: each is written to a hidden temp file, fsynced
and renamed into place, and only then listed in the manifest. A run killed
mid-shard loses the buffered rows of that shard only; reopen with
``resume=True``, skip :attr:`DistributionWriter.stored_ids` and add the rest in
the same order, and the files come out byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from profuser.teacher.reader import DistributionReader
from profuser.teacher.storage_format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    LOGPROB_FORMATS,
    MANIFEST,
    Q8_RANGE,
    Q8_STEP,
    RESERVED_COLUMNS,
    Record,
    StoredDistribution,
    decode_logprobs,
    encode_logprobs,
    id_dtype,
    padded_baseline_bytes,
    read_manifest,
    records_from_table,
    records_to_table,
    scalar_type_name,
    write_parquet,
)

__all__ = [
    "FORMAT_NAME",
    "LOGPROB_FORMATS",
    "MANIFEST",
    "Q8_RANGE",
    "Q8_STEP",
    "DistributionReader",
    "DistributionWriter",
    "StoredDistribution",
    "decode_logprobs",
    "encode_logprobs",
    "id_dtype",
    "padded_baseline_bytes",
]


def _atomic_write(path: Path, write) -> None:
    """Write via ``write(tmp_path)``, fsync, rename over ``path``, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class DistributionWriter:
    """Append examples' top-k distributions to a sharded Parquet store.

    Use as a context manager, or call :meth:`close` to write the last (short)
    shard. Leaving the ``with`` block by an exception does *not* write the
    buffered rows, the same as a crash, so a resumed run reproduces the files.

    Args:
        directory: store directory (created if missing).
        shard_size: examples per shard; must match on resume.
        vocab_size: vocabulary size of the model whose ids are stored.
        logprob_format: "fp16" or "q8" (see the module docstring for errors).
        resume: continue an existing store. Completed shards are kept; a final
            short shard (written by :meth:`close`) is reopened and refilled.
            Without a manifest this starts a new store.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        shard_size: int = 1024,
        vocab_size: int = 32000,
        logprob_format: str = "fp16",
        resume: bool = False,
    ):
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        if logprob_format not in LOGPROB_FORMATS:
            raise ValueError(
                f"logprob_format must be one of {LOGPROB_FORMATS}, got {logprob_format!r}"
            )
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        self.vocab_size = vocab_size
        self.logprob_format = logprob_format
        self._id_dtype = id_dtype(vocab_size)
        self._buffer: list[Record] = []
        self._stored: set[str] = set()
        self._closed = False
        self._manifest: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "vocab_size": vocab_size,
            "id_dtype": self._id_dtype.name,
            "logprob_format": logprob_format,
            "q8_range": Q8_RANGE,
            "shard_size": shard_size,
            "k": None,
            "scalar_columns": {},
            "shards": [],
            "complete": False,
        }
        existing = read_manifest(self.directory)
        if existing is not None and not resume:
            raise ValueError(
                f"{self.directory} already holds a distribution store; "
                "pass resume=True to continue it or remove the directory"
            )
        if existing is not None:
            # The manifest on disk stays as it is until the next shard lands, so a
            # crash right after reopening loses nothing that was already stored.
            self._resume_from(existing)
        self._discard_strays()
        if existing is None:
            self._write_manifest()

    def _resume_from(self, existing: dict[str, Any]) -> None:
        for key in ("vocab_size", "logprob_format", "shard_size"):
            if existing[key] != self._manifest[key]:
                raise ValueError(
                    f"cannot resume {self.directory}: it was written with {key}="
                    f"{existing[key]!r}, this writer has {self._manifest[key]!r}"
                )
        self._manifest.update(
            k=existing["k"], scalar_columns=existing["scalar_columns"], shards=existing["shards"]
        )
        for entry in self._manifest["shards"]:
            table = pq.read_table(self.directory / entry["file"], columns=["example_id"])
            self._stored.update(table.column("example_id").to_pylist())
        shards = self._manifest["shards"]
        if shards and shards[-1]["rows"] < self.shard_size:
            # A short shard only comes from close(); refilling it keeps shard
            # boundaries where an uninterrupted run would have put them.
            last = shards.pop()
            self._buffer = list(records_from_table(pq.read_table(self.directory / last["file"])))

    def _discard_strays(self) -> None:
        """Remove temp files and shards the manifest does not list (a crash mid-write)."""
        listed = {entry["file"] for entry in self._manifest["shards"]}
        for path in self.directory.iterdir():
            stray_shard = path.name.startswith("shard-") and path.name not in listed
            if path.name.endswith(".tmp") or stray_shard:
                if path.name.startswith("shard-") and self._buffer and path == self._next_path():
                    continue  # the reopened short shard; it is rewritten on the next flush
                path.unlink()

    @property
    def stored_ids(self) -> frozenset[str]:
        """Example ids already stored or buffered; a resuming caller skips these."""
        return frozenset(self._stored)

    def __contains__(self, example_id: str) -> bool:
        return example_id in self._stored

    def add(
        self, example_id: str, ids: np.ndarray, logprobs: np.ndarray, **scalar_columns: Any
    ) -> None:
        """Buffer one example; writes a shard every ``shard_size`` examples.

        Args:
            example_id: unique id of the example.
            ids: ``[n, k]`` candidate ids per response position, -1 in empty slots
                (empty slots must come after the real ones, as compress_logits makes them).
            logprobs: ``[n, k]`` their log-probs (empty slots ignored).
            **scalar_columns: one value per column (bool, int, float or str); the
                first example fixes the column names and types.
        """
        if self._closed:
            raise ValueError("add() on a closed DistributionWriter")
        if example_id in self._stored:
            raise ValueError(f"example {example_id!r} is already stored")
        ids = np.asarray(ids)
        logprobs = np.asarray(logprobs)
        if ids.ndim != 2 or ids.shape != logprobs.shape:
            raise ValueError(
                f"example {example_id!r}: ids {ids.shape} and logprobs {logprobs.shape} "
                "must both be [n, k]"
            )
        if self._manifest["k"] is None:
            self._manifest["k"] = int(ids.shape[1])
        elif ids.shape[1] != self._manifest["k"]:
            raise ValueError(
                f"example {example_id!r} has k={ids.shape[1]}, the store has k={self._manifest['k']}"
            )
        real = ids >= 0  # [n, k]
        # Empty slots must be a suffix, otherwise ragged rows would reorder candidates.
        if np.any(real[:, 1:] & ~real[:, :-1]):
            raise ValueError(f"example {example_id!r}: id -1 appears before a real candidate")
        if ids.size and (ids.max() >= self.vocab_size or ids.min() < -1):
            raise ValueError(
                f"example {example_id!r}: ids must be in -1..{self.vocab_size - 1}, "
                f"got {ids.min()}..{ids.max()}"
            )
        if np.isnan(logprobs[real]).any():
            raise ValueError(f"example {example_id!r}: NaN log-prob in a real candidate slot")
        self._check_scalars(example_id, scalar_columns)
        record = Record(
            example_id=example_id,
            counts=real.sum(axis=1).astype(np.int32),
            ids=ids[real].astype(self._id_dtype),
            logprobs=encode_logprobs(logprobs[real], self.logprob_format),
            scalars=dict(scalar_columns),
        )
        self._buffer.append(record)
        self._stored.add(example_id)
        if len(self._buffer) >= self.shard_size:
            self._flush()

    def _check_scalars(self, example_id: str, scalars: dict[str, Any]) -> None:
        declared = self._manifest["scalar_columns"]
        clash = set(scalars) & set(RESERVED_COLUMNS)
        if clash:
            raise ValueError(f"scalar column names {sorted(clash)} are reserved")
        if not declared and not self._manifest["shards"] and not self._buffer:
            declared.update({name: scalar_type_name(v) for name, v in sorted(scalars.items())})
        if set(scalars) != set(declared):
            raise ValueError(
                f"example {example_id!r} has scalar columns {sorted(scalars)}, "
                f"the store has {sorted(declared)}"
            )
        for name, value in scalars.items():
            if value is None:
                continue
            got, want = scalar_type_name(value), declared[name]
            if got != want and not (got == "int64" and want == "float64"):
                raise ValueError(
                    f"example {example_id!r}: column {name!r} holds {want}, got {value!r}"
                )

    def _next_path(self) -> Path:
        return self.directory / f"shard-{len(self._manifest['shards']):05d}.parquet"

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = records_to_table(
            self._buffer, self._id_dtype, self.logprob_format, self._manifest["scalar_columns"]
        )
        path = self._next_path()
        _atomic_write(path, lambda tmp: write_parquet(table, tmp, self.logprob_format))
        self._manifest["shards"].append(
            {
                "file": path.name,
                "rows": len(self._buffer),
                "positions": int(sum(len(r.counts) for r in self._buffer)),
            }
        )
        self._buffer = []
        self._write_manifest()

    def _write_manifest(self) -> None:
        text = json.dumps(self._manifest, indent=2, sort_keys=True) + "\n"
        _atomic_write(self.directory / MANIFEST, lambda tmp: tmp.write_text(text))

    def close(self) -> None:
        """Write the buffered rows as a last (possibly short) shard and mark the store complete."""
        if self._closed:
            return
        self._flush()
        self._manifest["complete"] = True
        self._write_manifest()
        self._closed = True

    def __enter__(self) -> DistributionWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True  # like a crash: buffered rows are dropped, see class doc
