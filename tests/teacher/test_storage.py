"""Distribution store: round trip, size, narrow ids, crash-resume byte identity, reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from profuser.teacher.storage import (
    Q8_RANGE,
    Q8_STEP,
    DistributionReader,
    DistributionWriter,
    id_dtype,
    padded_baseline_bytes,
)

V = 32000


def fake_example(rng: np.random.Generator, n: int, k: int = 10, zipf: bool = False):
    """Top-k of a random softmax; with ``zipf`` the ids follow a Zipf(1) unigram prior, as
    a real LM's candidates do (frequent tokens recur), otherwise they are uniform."""
    if zipf:
        prior = 1.0 / np.arange(1, V + 1)
        draws = rng.choice(V, size=(n, 4 * k), p=prior / prior.sum())
        ids = np.stack([pd_unique(row)[:k] for row in draws])
    else:
        ids = np.stack([rng.choice(V, k, replace=False) for _ in range(n)])
    logits = rng.normal(0.0, 2.0, (n, 64))
    logprobs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    logprobs = -np.sort(-logprobs, axis=1)[:, :k].astype(np.float32)
    # Top-p leaves empty slots at the end of some rows.
    cut = rng.integers(1, k + 1, size=n) if k > 1 else np.ones(n, int)
    cut[rng.random(n) < 0.7] = k
    empty = np.arange(k)[None, :] >= cut[:, None]
    return np.where(empty, -1, ids), np.where(empty, -np.inf, logprobs).astype(np.float32)


def pd_unique(row: np.ndarray) -> np.ndarray:
    _, first = np.unique(row, return_index=True)
    return row[np.sort(first)]


def make_data(seed: int, count: int, lo: int = 5, hi: int = 30, **kw):
    rng = np.random.default_rng(seed)
    return [
        (f"ex-{i:04d}", *fake_example(rng, int(rng.integers(lo, hi + 1)), **kw))
        for i in range(count)
    ]


def write_all(directory: Path, data, shard_size: int = 10, fmt: str = "fp16") -> None:
    with DistributionWriter(
        directory, shard_size=shard_size, vocab_size=V, logprob_format=fmt
    ) as w:
        for i, (eid, ids, lps) in enumerate(data):
            w.add(eid, ids, lps, ce=float(i) / 7, source=f"m{i % 3}", length=len(ids))


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("fmt", ["fp16", "q8"])
def test_round_trip(tmp_path, fmt):
    data = make_data(0, 25)
    data[3][2][0, 1] = -25.0  # below the q8 range: clamps to -20
    write_all(tmp_path, data, fmt=fmt)
    reader = DistributionReader(tmp_path)
    assert len(reader) == 25 and reader.complete and reader.k == 10
    for i, (eid, ids, lps) in enumerate(data):
        got = reader.get(eid)
        assert got.ids.dtype == np.int64 and got.logprobs.dtype == np.float32
        np.testing.assert_array_equal(got.ids, ids)
        real = ids >= 0
        assert np.isneginf(got.logprobs[~real]).all()
        want = np.maximum(lps[real], -Q8_RANGE) if fmt == "q8" else lps[real]
        err = np.abs(got.logprobs[real] - want)
        bound = Q8_STEP / 2 + 1e-6 if fmt == "q8" else np.abs(want) * 2.0**-11 + 1e-7
        assert (err <= bound).all()
        assert got.scalars == {"ce": float(i) / 7, "source": f"m{i % 3}", "length": len(ids)}
    with pytest.raises(KeyError, match="ex-9999"):
        reader.get("ex-9999")


@pytest.mark.parametrize(("fmt", "zipf"), [("fp16", True), ("q8", True), ("q8", False)])
def test_bytes_per_token_at_k10(tmp_path, fmt, zipf):
    data = make_data(1, 200, lo=100, hi=300, zipf=zipf)
    write_all(tmp_path, data, shard_size=64, fmt=fmt)
    reader = DistributionReader(tmp_path)
    assert reader.num_positions == sum(len(ids) for _, ids, _ in data)
    per_token = reader.disk_bytes() / reader.num_positions
    print(f"{fmt} zipf={zipf}: {per_token:.2f} bytes/token")
    assert per_token <= 32
    assert reader.disk_bytes() * 20 < padded_baseline_bytes(200)


def test_id_dtype_is_narrowest(tmp_path):
    assert [id_dtype(v).name for v in (100, 128, 129, 32000, 32768, 32769, 50257)] == [
        "int8", "int8", "int16", "int16", "int16", "int32", "int32",
    ]  # fmt: skip
    write_all(tmp_path, make_data(2, 3))
    schema = pq.read_schema(tmp_path / "shard-00000.parquet")
    assert str(schema.field("ids").type.value_type.value_type) == "int16"
    assert padded_baseline_bytes(1) == 2048 * 10 * 10


def test_resume_after_crash_is_byte_identical(tmp_path):
    data = make_data(3, 47)
    write_all(tmp_path / "clean", data)

    crashed = tmp_path / "crashed"
    writer = DistributionWriter(crashed, shard_size=10, vocab_size=V)
    for i, (eid, ids, lps) in enumerate(data[:36]):
        writer.add(eid, ids, lps, ce=float(i) / 7, source=f"m{i % 3}", length=len(ids))
    del writer  # killed mid-shard: rows 30..35 were only buffered
    (crashed / ".shard-00003.parquet.tmp").write_bytes(b"half a file")
    (crashed / "shard-00004.parquet").write_bytes(b"renamed, manifest not yet updated")
    assert len(DistributionReader(crashed)) == 30  # partial work is never visible

    with DistributionWriter(crashed, shard_size=10, vocab_size=V, resume=True) as writer:
        assert writer.stored_ids == {eid for eid, _, _ in data[:30]}
        for i, (eid, ids, lps) in enumerate(data):
            if eid not in writer:
                writer.add(eid, ids, lps, ce=float(i) / 7, source=f"m{i % 3}", length=len(ids))
    assert files(crashed) == files(tmp_path / "clean")


def test_appending_to_finished_store_refills_short_shard(tmp_path):
    data = make_data(4, 33)
    write_all(tmp_path / "clean", data)
    write_all(tmp_path / "twice", data[:25])  # ends with a 5-row shard
    with DistributionWriter(tmp_path / "twice", shard_size=10, vocab_size=V, resume=True) as w:
        assert len(w.stored_ids) == 25
        for i, (eid, ids, lps) in enumerate(data):
            if eid not in w:
                w.add(eid, ids, lps, ce=float(i) / 7, source=f"m{i % 3}", length=len(ids))
    assert files(tmp_path / "twice") == files(tmp_path / "clean")


def test_exception_in_block_keeps_partial_shard_invisible(tmp_path):
    data = make_data(5, 15)
    with pytest.raises(RuntimeError):
        with DistributionWriter(tmp_path, shard_size=10, vocab_size=V) as w:
            for eid, ids, lps in data:
                w.add(eid, ids, lps)
            raise RuntimeError("stage failed")
    reader = DistributionReader(tmp_path)
    assert len(reader) == 10 and not reader.complete


def test_settings_and_inputs_are_checked(tmp_path):
    write_all(tmp_path, make_data(6, 3))
    with pytest.raises(ValueError, match="resume=True"):
        DistributionWriter(tmp_path, shard_size=10, vocab_size=V)
    with pytest.raises(ValueError, match="shard_size=10"):
        DistributionWriter(tmp_path, shard_size=20, vocab_size=V, resume=True)
    w = DistributionWriter(tmp_path / "new", shard_size=10, vocab_size=100)
    ok = (np.array([[1, 2]]), np.array([[-0.1, -2.0]]))
    w.add("a", *ok, ce=1.0)
    with pytest.raises(ValueError, match="already stored"):
        w.add("a", *ok, ce=1.0)
    with pytest.raises(ValueError, match="before a real"):
        w.add("b", np.array([[-1, 2]]), ok[1], ce=1.0)
    with pytest.raises(ValueError, match="k=3"):
        w.add("b", np.array([[1, 2, 3]]), np.zeros((1, 3)), ce=1.0)
    with pytest.raises(ValueError, match="ids must be in"):
        w.add("b", np.array([[1, 100]]), ok[1], ce=1.0)
    with pytest.raises(ValueError, match="scalar columns"):
        w.add("b", *ok, loss=1.0)
    with pytest.raises(ValueError, match="holds float64"):
        w.add("b", *ok, ce="high")
    w.add("b", *ok, ce=2)  # an int in a float column is fine
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        DistributionReader(tmp_path / "missing")


def test_reader_streams_shard_by_shard(tmp_path, monkeypatch):
    data = make_data(7, 35)
    write_all(tmp_path, data)
    reader = DistributionReader(tmp_path)
    read: list[int] = []
    original = DistributionReader._read_shard
    monkeypatch.setattr(
        DistributionReader, "_read_shard", lambda self, s: read.append(s) or original(self, s)
    )
    rows = iter(reader)
    first = [next(rows) for _ in range(12)]
    assert read == [0, 1]
    assert [r.example_id for r in first] == [eid for eid, _, _ in data[:12]]
    rest = list(rows)
    assert read == [0, 1, 2, 3] and len(first) + len(rest) == 35
    assert reader.example_ids() == [eid for eid, _, _ in data]


def test_as_dataset_opens_with_datasets(tmp_path):
    data = make_data(8, 12)
    write_all(tmp_path / "store", data, fmt="q8")
    ds = DistributionReader(tmp_path / "store").as_dataset(cache_dir=tmp_path / "cache")
    assert ds.num_rows == 12
    assert set(ds.column_names) == {"example_id", "ids", "logprobs", "ce", "source", "length"}
    row = ds[4]
    eid, ids, _ = data[4]
    assert row["example_id"] == eid
    assert row["ids"] == [[int(t) for t in r if t >= 0] for r in ids]
    assert all(isinstance(q, int) and 0 <= q <= 255 for r in row["logprobs"] for q in r)
