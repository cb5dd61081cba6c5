"""Reading a distribution store (see :mod:`profuser.teacher.storage` for the layout)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from profuser.teacher.storage_format import (
    MANIFEST,
    Record,
    StoredDistribution,
    decode_logprobs,
    read_manifest,
    records_from_table,
)


class DistributionReader:
    """Read a store written by :class:`DistributionWriter`, one shard at a time."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        manifest = read_manifest(self.directory)
        if manifest is None:
            raise FileNotFoundError(
                f"{self.directory / MANIFEST} not found: not a distribution store, "
                "or the stage that writes it has not run"
            )
        self.manifest = manifest
        self.logprob_format: str = manifest["logprob_format"]
        self.vocab_size: int = manifest["vocab_size"]
        self.k: int = manifest["k"] or 0
        self.complete: bool = manifest["complete"]
        self.shard_paths = [self.directory / s["file"] for s in manifest["shards"]]
        self._index: dict[str, tuple[int, int]] | None = None
        self._cached: tuple[int, list[StoredDistribution]] | None = None

    def __len__(self) -> int:
        return sum(s["rows"] for s in self.manifest["shards"])

    @property
    def num_positions(self) -> int:
        """Response positions stored over all examples."""
        return sum(s["positions"] for s in self.manifest["shards"])

    def disk_bytes(self) -> int:
        """Bytes on disk: every shard plus the manifest."""
        files = [*self.shard_paths, self.directory / MANIFEST]
        return sum(p.stat().st_size for p in files)

    def _decode(self, record: Record) -> StoredDistribution:
        n, k = len(record.counts), self.k
        filled = np.arange(k)[None, :] < record.counts[:, None]  # [n, k]
        ids = np.full((n, k), -1, dtype=np.int64)
        logprobs = np.full((n, k), -np.inf, dtype=np.float32)
        ids[filled] = record.ids
        logprobs[filled] = decode_logprobs(record.logprobs, self.logprob_format)
        return StoredDistribution(record.example_id, ids, logprobs, record.scalars)

    def _read_shard(self, shard: int) -> list[StoredDistribution]:
        # Sliced to the manifest's count: a short last shard may be refilled by a
        # resumed writer while this reader holds the older manifest.
        rows = self.manifest["shards"][shard]["rows"]
        table = pq.read_table(self.shard_paths[shard]).slice(0, rows)
        return [self._decode(r) for r in records_from_table(table)]

    def __iter__(self) -> Iterator[StoredDistribution]:
        """Rows in write order; holds one shard in memory at a time."""
        for shard in range(len(self.shard_paths)):
            yield from self._read_shard(shard)

    def example_ids(self) -> list[str]:
        """All stored example ids in order (reads only that column)."""
        return [eid for eid, _ in sorted(self._get_index().items(), key=lambda kv: kv[1])]

    def _get_index(self) -> dict[str, tuple[int, int]]:
        if self._index is None:
            self._index = {}
            for shard, path in enumerate(self.shard_paths):
                column = pq.read_table(path, columns=["example_id"]).column("example_id")
                for row, eid in enumerate(column.to_pylist()):
                    self._index[eid] = (shard, row)
        return self._index

    def __contains__(self, example_id: str) -> bool:
        return example_id in self._get_index()

    def get(self, example_id: str) -> StoredDistribution:
        """One example by id: ``ids`` int64 ``[n, k]``, ``logprobs`` float32 ``[n, k]``."""
        try:
            shard, row = self._get_index()[example_id]
        except KeyError:
            raise KeyError(f"example {example_id!r} is not in {self.directory}") from None
        # Consecutive gets usually hit the same shard (data loaders walk in order).
        if self._cached is None or self._cached[0] != shard:
            self._cached = (shard, self._read_shard(shard))
        return self._cached[1][row]

    def as_dataset(self, cache_dir: str | os.PathLike | None = None):
        """The store as a ``datasets.Dataset`` (stored form: q8 log-probs stay uint8 codes,
        decode them with :func:`decode_logprobs`)."""
        import datasets

        if not self.shard_paths:
            raise ValueError(f"{self.directory} holds no shards yet")
        return datasets.Dataset.from_parquet(
            [str(p) for p in self.shard_paths],
            cache_dir=None if cache_dir is None else str(cache_dir),
        )
