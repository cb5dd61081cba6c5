"""Helpers the stages share: reading the normalised data, opening sources."""

from __future__ import annotations

from pathlib import Path

from profuser.config import RunConfig, SourceConfig
from profuser.io.shards import read_rows_file
from profuser.models.loading import load_causal_lm, load_tokenizer
from profuser.pipeline import StageContext
from profuser.stages.contracts import FUSION_ROWS


def read_data(ctx: StageContext) -> list[dict]:
    """The fusion set: the rows the select stage kept (id, system, instruction, response,
    extras), the data stage's whole pool unless ``select.rows`` is set."""
    return read_rows_file(ctx.path(FUSION_ROWS))


def open_source(src: SourceConfig):
    """(tokenizer, model) of one source, through the Auto classes."""
    tok = load_tokenizer(src.path, src.chat_template, src.trust_remote_code)
    model = load_causal_lm(src.path, src.dtype, trust_remote_code=src.trust_remote_code)
    return tok, model


def target_source(cfg: RunConfig) -> SourceConfig:
    """The target model as a source entry (a separate target_path, or the named source)."""
    if cfg.target_path:
        base = next((s for s in cfg.sources if s.name == cfg.target), None)
        return SourceConfig(
            name=cfg.target,
            path=cfg.target_path,
            chat_template=base.chat_template if base else None,
            dtype=base.dtype if base else "auto",
        )
    return next(s for s in cfg.sources if s.name == cfg.target)


def part_dir(base: Path, shard: tuple[int, int]) -> Path:
    """Where one process writes a sharded store: ``base`` itself, or ``base/part-i-of-n``."""
    i, n = shard
    return base if n == 1 else base / f"part-{i:02d}-of-{n:02d}"


def parts_complete(base: Path, n: int) -> bool:
    """Whether all ``n`` processes' parts of a store (or the single store) are complete."""
    from profuser.io import read_json

    return all(
        (read_json(part_dir(base, (i, n)) / "manifest.json") or {}).get("complete")
        for i in range(n)
    )


class StoreView:
    """One distribution store, or the parts that several processes wrote, read as one."""

    def __init__(self, base: Path):
        from profuser.teacher.storage import DistributionReader

        if (base / "manifest.json").is_file():
            self.readers = [DistributionReader(base)]
        else:
            self.readers = [
                DistributionReader(p)
                for p in sorted(base.glob("part-*"))
                if (p / "manifest.json").is_file()
            ]

    @property
    def complete(self) -> bool:
        return bool(self.readers) and all(r.complete for r in self.readers)

    def __contains__(self, example_id: str) -> bool:
        return any(example_id in r for r in self.readers)

    def get(self, example_id: str):
        for r in self.readers:
            if example_id in r:
                return r.get(example_id)
        raise KeyError(example_id)

    def __iter__(self):
        for r in self.readers:
            yield from r

    def __len__(self) -> int:
        return sum(len(r) for r in self.readers)
