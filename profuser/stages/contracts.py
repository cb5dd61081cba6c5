"""What each stage may touch: the run-directory artifacts (declared once, here) and a config
view that refuses the fields a stage did not declare.

A stage declares ``reads`` (dotted config fields its outputs depend on: they make its
fingerprint), ``inputs`` and ``outputs`` (artifacts). Inside the stage, ``ctx.cfg`` is a
:class:`ConfigView` that raises :class:`ContractError` on any other field, and
``ctx.path(artifact, ...)`` is the only way to a path, refused for an artifact the stage did
not declare. So the fingerprint cannot miss a dependency, and no path is spelled twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ContractError(RuntimeError):
    """A stage touched a config field or an artifact it did not declare (a bug in the stage)."""


@dataclass(frozen=True)
class Artifact:
    """A file or folder of a run directory, written by one stage: ``<stage>/<rel>``, where
    ``rel`` may hold ``{placeholders}`` (``generate/{source}``)."""

    stage: str
    rel: str
    doc: str = ""

    def under(self, run_dir: Path, **parts: str) -> Path:
        """The artifact's path in ``run_dir``: for code outside the stages (the demo, scripts)."""
        return Path(run_dir) / self.stage / self.rel.format(**parts)

    @property
    def pattern(self) -> str:
        """``rel`` with each placeholder as ``*`` (for matching files in tests and tools)."""
        return f"{self.stage}/" + re.sub(r"\{[^}]*\}", "*", self.rel)


# The run directory, stage by stage.
DATA_ROWS = Artifact("data", "train.parquet", "id, system, instruction, response, extras")
FUSION_ROWS = Artifact("select", "rows.parquet", "the pool rows the fusion uses (DATA_ROWS' form)")
PROBE_CE = Artifact(
    "select", "probe/{model}.parquet", "one model's CE per byte on the pool (+ .json key)"
)
POOL_GAPS = Artifact("select", "gaps.parquet", "every pool row's gap, leader and whether kept")
ANSWERS = Artifact("generate", "{source}", "one sampled answer per row (sharded rows)")
SAMPLES = Artifact(
    "generate", "samples/{source}/{k}", "extra sampled answer k >= 1 per row (sampling.n > 1)"
)
RM_SCORES = Artifact("score", "{reward_model}", "one reward model's scores (sharded rows)")
SCORES = Artifact("score", "scores.parquet", "every answer's every score")
CHOSEN = Artifact("score", "chosen.parquet", "the voted answer and its source per row")
TEACHER_STORE = Artifact("teacher", "{source}/{mode}", "CE and top-k distributions (gt, own)")
SELECTION = Artifact("teacher", "selection.parquet", "MinCE winner and every source's CE")
ALIGNED = Artifact("align", "{mode}", "teacher distributions in the target's vocabulary")
PAIRS = Artifact("pairs", "{rule}.parquet", "one (chosen, rejected) answer pair per kept row")
SAMPLE_SCORES = Artifact("pairs", "scores/{source}/{k}", "the pairing RM's score of sample k")
PAIR_LOGPROBS = Artifact(
    "logprobs", "{rule}.parquet", "each pair's sequence log-probs: target and every source"
)
LOGPROB_PARTS = Artifact(
    "logprobs", "parts/{rule}/{model}.parquet", "one model's log-probs of one rule's pairs"
)
TRAINED = Artifact("train", "{variant}", "final/, log.csv, variant.json, checkpoints")
MERGED = Artifact("train", "merges/{merge}", "a merged model")
EVAL_RECORDS = Artifact("eval", "models/{model}.json", "every metric and item of one model")
EVAL_SCORES = Artifact("eval", "scores.json", "headline scores of every model")
REPORT_FILES = Artifact("report", "{file}", "results.json, report.md, figures")
STALE = Artifact(".stale", "{stage}-{fingerprint}", "outputs moved aside when settings changed")


def _prefix_of(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return len(a) <= len(b) and b[: len(a)] == a


class ConfigView:
    """Read-only attribute access to a config, limited to declared dotted paths.

    ``reads=("advantage.top_k", "sources")``: ``view.sources`` and ``view.advantage.top_k``
    give the values; ``view.advantage`` gives a narrower view; ``view.train`` raises.
    Every field read is recorded in ``used`` (dotted), for tests.
    """

    def __init__(
        self,
        obj: Any,
        reads: tuple[str, ...],
        stage: str,
        prefix: tuple[str, ...] = (),
        used: set[str] | None = None,
    ):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_reads", tuple(tuple(r.split(".")) for r in reads))
        object.__setattr__(self, "_stage", stage)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "used", set() if used is None else used)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        path = (*self._prefix, name)
        if any(_prefix_of(r, path) for r in self._reads):
            self.used.add(".".join(path))
            return getattr(self._obj, name)
        if any(_prefix_of(path, r) for r in self._reads):
            child = getattr(self._obj, name)
            return ConfigView(
                child, tuple(".".join(r) for r in self._reads), self._stage, path, self.used
            )
        raise ContractError(
            f"stage {self._stage!r} reads config field `{'.'.join(path)}` without declaring it "
            f"in its `reads` (declared: {', '.join('.'.join(r) for r in self._reads)})"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise ContractError(f"stage {self._stage!r} may not change the config (`{name}`)")

    def fingerprint(self, *paths: str) -> str:
        """The config's fingerprint of ``paths``, each of which must be declared."""
        for p in paths:
            if not any(_prefix_of(r, tuple(p.split("."))) for r in self._reads):
                raise ContractError(f"stage {self._stage!r} fingerprints undeclared `{p}`")
            self.used.add(p)
        return self._obj.fingerprint(*paths)


__all__ = ["Artifact", "ConfigView", "ContractError"]
