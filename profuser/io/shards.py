"""Sharded, resumable work inside a stage.

A stage splits its examples into fixed shards; each finished shard is one file
written atomically, so a killed process loses at most the shard in flight and
a re-run skips every shard already on disk. With ``--shard i/n`` a process
takes the shards whose index is i modulo n; the stage completes once every
shard exists, whichever process wrote it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import datasets

from profuser.io import atomic_write_bytes

T = TypeVar("T")


def shard_ranges(n_items: int, shard_size: int) -> list[tuple[int, int]]:
    """[start, end) of each shard."""
    return [(s, min(s + shard_size, n_items)) for s in range(0, n_items, shard_size)]


def shard_path(directory: Path, index: int) -> Path:
    return directory / f"shard-{index:05d}.parquet"


def write_rows(path: Path, rows: list[dict]) -> None:
    """Rows to one Parquet file, atomically."""
    tmp = path.with_name(f".{path.name}.building")
    datasets.Dataset.from_list(rows).to_parquet(str(tmp))
    atomic_write_bytes(path, tmp.read_bytes())
    tmp.unlink()


def run_shards(
    directory: Path,
    items: Sequence[T],
    shard_size: int,
    work: Callable[[Sequence[T]], list[dict]],
    shard: tuple[int, int] = (0, 1),
) -> bool:
    """Run ``work`` on every missing shard of ``items`` that this process owns.

    Returns True when every shard of the stage exists (all processes' work).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ranges = shard_ranges(len(items), shard_size)
    for index, (start, end) in enumerate(ranges):
        path = shard_path(directory, index)
        if index % shard[1] != shard[0] or path.exists():
            continue
        write_rows(path, work(items[start:end]))
    return all(shard_path(directory, i).exists() for i in range(len(ranges)))


def read_rows(directory: Path) -> list[dict]:
    """All rows of a directory's shards, in shard order."""
    files = sorted(directory.glob("shard-*.parquet"))
    if not files:
        return []
    return datasets.Dataset.from_parquet([str(f) for f in files]).to_list()


def read_rows_file(path: Path) -> list[dict]:
    """All rows of one Parquet file."""
    return datasets.Dataset.from_parquet(str(path)).to_list()
