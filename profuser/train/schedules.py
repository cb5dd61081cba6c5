"""Fusion schedules as data: a schedule is a list of phases, each with its loss weights.

Every variant the paper compares (ProFuser, CSFT, Fuse, SimulFuse, ReverseFuse, the data
curricula of section 5.2, the number-of-sources study) is one such list. Presets live in a
registry (:data:`SCHEDULES`); a run config may name one or spell the phases out.

The weights are those of eq. 4-5 (see :func:`profuser.train.losses.fusion_loss`):
L = w1 · (SFT(x, ỹ^B) + λ · KL(P̃^B, P_T)) + w2 · (SFT(x, y) + β · KL(P^MinCE, P_T)).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from profuser.errors import ConfigError

Subset = Literal["all", "easy_half", "hard_half"]
Order = Literal["shuffle", "gt_length", "rm_score"]

# share of the data each subset holds, for steps_per_epoch given as one number
SUBSET_FRACTION: dict[str, float] = {"all": 1.0, "easy_half": 0.5, "hard_half": 0.5}


class PreferenceOptions(BaseModel):
    """A preference phase's loss and data (implicit fusion, `profuser.train.preference_losses`).

    ``pairing``: the registered rule that builds its (chosen, rejected) pairs from the sources'
    sampled answers (`profuser.advantage.pairing`); ``reference``: ``target`` (the target's
    model the phase starts from, the fusion phases' result where there are any: standard DPO)
    or ``fused`` (the sources' log-probs combined by ``fuse_rule`` and clipped at that model's
    + ``clip``: InfiFPO's reference); ``lr``: this
    phase's learning rate (None: ``train.preference_lr``, else ``train.lr``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    beta: float = Field(default=0.1, gt=0)
    label_smoothing: float = Field(default=0.0, ge=0, lt=0.5)
    pairing: str = "intra_source"
    reference: Literal["target", "fused"] = "target"
    fuse_rule: str = "mean"
    clip: float = Field(default=1.0, ge=0)
    lr: float | None = Field(default=None, gt=0)

    @field_validator("pairing")
    @classmethod
    def _known_pairing(cls, v: str) -> str:
        from profuser.advantage.pairing import get_pairing_rule

        get_pairing_rule(v)  # a ValueError naming the registered rules
        return v

    @field_validator("fuse_rule")
    @classmethod
    def _known_fuse_rule(cls, v: str) -> str:
        from profuser.train.preference_losses import get_fuse_rule

        get_fuse_rule(v)
        return v


class Phase(BaseModel):
    """One phase of a schedule: how long, with which loss weights, on which data.

    ``subset``: the whole data (``all``) or one half of it split by difficulty; the halves need a
    curriculum ``order`` key to say what "easy" means. ``order``: ``shuffle``, or a curriculum
    key, easiest first: ``gt_length`` (shortest ground-truth response first) or ``rm_score``
    (highest reward of the target's own answer first). ``sources``: restrict the advantage
    selection (RM vote, MinCE) to these source names; ``None`` = all sources.
    ``epochs`` counts passes over the phase's own subset.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    epochs: float = Field(gt=0)
    w1: float = Field(ge=0, description="weight of the inference-mode fusion loss")
    w2: float = Field(ge=0, description="weight of the training-mode fusion loss")
    lam: float = Field(ge=0, description="λ: KL coefficient in inference mode")
    beta: float = Field(ge=0, description="β: KL coefficient in training mode")
    subset: Subset = "all"
    order: Order = "shuffle"
    sources: list[str] | None = None
    # Set: a preference phase (w1 = w2 = 0), trained on pairs of the sources' answers.
    preference: PreferenceOptions | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Phase:
        if self.preference is not None:
            if self.w1 or self.w2 or self.lam or self.beta:
                raise ValueError(
                    f"phase {self.name!r}: a preference phase trains its preference loss "
                    "alone; set w1, w2, lam and beta to 0"
                )
            if self.subset != "all" or self.sources is not None or self.order != "shuffle":
                raise ValueError(
                    f"phase {self.name!r}: a preference phase uses every pair in a shuffled "
                    "order; leave subset, order and sources unset"
                )
            return self
        if self.w1 == 0 and self.w2 == 0:
            raise ValueError(
                f"phase {self.name!r}: w1 and w2 are both 0, so it would train nothing"
            )
        if self.subset != "all" and self.order == "shuffle":
            raise ValueError(
                f"phase {self.name!r}: subset {self.subset!r} needs a difficulty key; "
                "set order to 'gt_length' or 'rm_score'"
            )
        if self.sources is not None:
            if not self.sources:
                raise ValueError(f"phase {self.name!r}: sources is empty; use null for all sources")
            if len(set(self.sources)) != len(self.sources):
                raise ValueError(f"phase {self.name!r}: sources repeat a name: {self.sources}")
        return self

    @property
    def uses_infer(self) -> bool:
        """Whether this phase needs the inference-mode forward pass (w1 > 0)."""
        return self.w1 > 0

    @property
    def uses_train(self) -> bool:
        """Whether this phase needs the training-mode forward pass (w2 > 0)."""
        return self.w2 > 0


class UnknownScheduleError(ConfigError, ValueError):
    """A schedule name that is not registered (a user error and a ValueError)."""


ScheduleFactory = Callable[[], list[Phase]]
SCHEDULES: dict[str, ScheduleFactory] = {}


def register_schedule(name: str) -> Callable[[ScheduleFactory], ScheduleFactory]:
    """Register a preset under ``name``; the factory returns a fresh list of phases."""

    def wrap(fn: ScheduleFactory) -> ScheduleFactory:
        if name in SCHEDULES:
            raise ValueError(f"schedule {name!r} is already registered")
        SCHEDULES[name] = fn
        return fn

    return wrap


def get_schedule(name: str) -> list[Phase]:
    """The phases of the preset ``name``; a clear error naming the valid presets otherwise."""
    try:
        factory = SCHEDULES[name]
    except KeyError:
        raise UnknownScheduleError(
            f"unknown schedule {name!r}; choose one of {', '.join(sorted(SCHEDULES))}"
        ) from None
    return check_preference_last(factory())


def check_preference_last(phases: list[Phase]) -> list[Phase]:
    """``phases``, where at most one is a preference phase and it is the last; a ValueError
    naming the phase otherwise (fusion phases train first, then preferences)."""
    for j, ph in enumerate(phases[:-1]):
        if ph.preference is not None:
            raise ValueError(
                f"phase {ph.name!r}: a preference phase must be the schedule's last phase "
                f"(it is {j + 1} of {len(phases)})"
            )
    return phases


def fusion_phases(phases: Sequence[Phase]) -> list[Phase]:
    """The phases trained by the fusion loop (every phase but a preference phase)."""
    return [p for p in phases if p.preference is None]


def preference_phase(phases: Sequence[Phase]) -> Phase | None:
    """The schedule's preference phase (its last phase), or None."""
    return phases[-1] if phases and phases[-1].preference is not None else None


def resolve_schedule(spec: str | Sequence[Phase | Mapping]) -> list[Phase]:
    """A preset name or a list of phases (models or plain dicts from a config) -> phases."""
    if isinstance(spec, str):
        return get_schedule(spec)
    phases = [p if isinstance(p, Phase) else Phase.model_validate(p) for p in spec]
    if not phases:
        raise ValueError("a schedule needs at least one phase")
    return check_preference_last(phases)


def with_sources(phases: Sequence[Phase], sources: Sequence[str]) -> list[Phase]:
    """Copies of ``phases`` that fuse only ``sources`` (replacing any earlier restriction).

    For the number-of-sources study: ``with_sources(get_schedule("profuser"), ["a", "b"])``.
    """
    return [Phase.model_validate({**p.model_dump(), "sources": list(sources)}) for p in phases]


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------


@register_schedule("profuser")
def _profuser() -> list[Phase]:
    # Appendix A: one epoch of inference-mode fusion (λ = 0.1), then two epochs of co-fusion
    # where training mode leads (w2 = 1) and inference mode is kept at w1 = 0.1.
    return [
        Phase(name="infer", epochs=1, w1=1.0, w2=0.0, lam=0.1, beta=0.0),
        Phase(name="co_fuse", epochs=2, w1=0.1, w2=1.0, lam=0.5, beta=0.5),
    ]


@register_schedule("csft")
def _csft() -> list[Phase]:
    # Appendix C "Continual SFT": the same data, GT only, no teacher, same 3-epoch budget.
    return [Phase(name="sft", epochs=3, w1=0.0, w2=1.0, lam=0.0, beta=0.0)]


@register_schedule("fuse")
def _fuse() -> list[Phase]:
    # Training-mode fusion only, as FuseLLM. β = 0.5 is ProFuser's own training-mode KL
    # coefficient (appendix A), so the comparison isolates the schedule, not the coefficient;
    # FuseLLM's (1-λ)·CLM + λ·fuse mixing is a different parametrisation of the same trade-off.
    return [Phase(name="train", epochs=3, w1=0.0, w2=1.0, lam=0.0, beta=0.5)]


@register_schedule("simulfuse")
def _simulfuse() -> list[Phase]:
    # Both modes for the whole budget, with ProFuser's co-fusion weights (small inference weight).
    return [Phase(name="co_fuse", epochs=3, w1=0.1, w2=1.0, lam=0.5, beta=0.5)]


@register_schedule("reversefuse")
def _reversefuse() -> list[Phase]:
    # The mirror of ProFuser: one epoch of training mode alone (β = 0.5, its coefficient
    # everywhere in the paper), then two epochs of co-fusion led by inference mode (w1 = 1)
    # keeping training mode at w2 = 0.1 — ProFuser's phases with the two modes' roles swapped.
    return [
        Phase(name="train", epochs=1, w1=0.0, w2=1.0, lam=0.0, beta=0.5),
        Phase(name="co_fuse", epochs=2, w1=1.0, w2=0.1, lam=0.5, beta=0.5),
    ]


def _curriculum(key: Order) -> list[Phase]:
    # Section 5.2: "divide the training set into two subsets ordered from easy to hard ... in
    # both settings, we conduct inference and training mode fusion progressively", and the data
    # variant is "compromised by dataset division within the inference mode paradigm": the
    # inference-mode phase sees the easy half, the co-fusion phase the hard half. Losses are
    # ProFuser's. Epochs count passes over a half, so 2 + 4 half-epochs give ProFuser's budget
    # of 1 + 2 full epochs (same optimizer steps, a fair comparison in Table 2).
    halves = (("easy_infer", 2, "easy_half"), ("hard_co_fuse", 4, "hard_half"))
    return [
        Phase.model_validate(
            {**p.model_dump(), "name": name, "epochs": epochs, "subset": subset, "order": key}
        )
        for p, (name, epochs, subset) in zip(_profuser(), halves, strict=True)
    ]


@register_schedule("gtlen_fuse")
def _gtlen_fuse() -> list[Phase]:
    return _curriculum("gt_length")


@register_schedule("rmscore_fuse")
def _rmscore_fuse() -> list[Phase]:
    return _curriculum("rm_score")


# Implicit fusion (issue 19): SFT on the voted answers, then preferences over the sources'
# answers. FuseChat-3.0's recipe pairs the best and worst answer of one source; InfiFPO's
# replaces DPO's reference by the sources' fused log-probabilities. Both spend ProFuser's budget
# of three epochs: two of SFT, one over the pairs.
def _voted_sft() -> Phase:
    return Phase(name="sft_voted", epochs=2, w1=1.0, w2=0.0, lam=0.0, beta=0.0)


def _preference(reference: str = "target") -> Phase:
    return Phase(
        name="preference",
        epochs=1,
        w1=0.0,
        w2=0.0,
        lam=0.0,
        beta=0.0,
        preference=PreferenceOptions(reference=reference),
    )


@register_schedule("implicit")
def _implicit() -> list[Phase]:
    return [_voted_sft(), _preference()]


@register_schedule("profuser_po")
def _profuser_po() -> list[Phase]:
    return [*_profuser(), _preference()]


@register_schedule("infifpo")
def _infifpo() -> list[Phase]:
    return [_voted_sft(), _preference("fused")]


# ---------------------------------------------------------------------------------------------
# Resolving the phase in force at an optimizer step
# ---------------------------------------------------------------------------------------------


StepsPerEpoch = int | Mapping[str, int]


def _epoch_steps(phase: Phase, steps_per_epoch: StepsPerEpoch) -> float:
    if isinstance(steps_per_epoch, Mapping):
        if phase.subset not in steps_per_epoch:
            raise ValueError(
                f"phase {phase.name!r} runs on subset {phase.subset!r} but steps_per_epoch "
                f"only gives {sorted(steps_per_epoch)}"
            )
        return float(steps_per_epoch[phase.subset])
    return steps_per_epoch * SUBSET_FRACTION[phase.subset]


def phase_steps(phases: Sequence[Phase], steps_per_epoch: StepsPerEpoch) -> list[int]:
    """Optimizer steps of each phase.

    ``steps_per_epoch``: steps of one pass over the whole data (halves take half), or a mapping
    subset -> steps of one pass over that subset when the exact counts are known. Fractional
    epochs round half up, and every phase gets at least one step so none silently vanishes.
    """
    out = []
    for phase in phases:
        per_epoch = _epoch_steps(phase, steps_per_epoch)
        if per_epoch <= 0:
            raise ValueError(f"steps per epoch must be > 0, got {per_epoch} for {phase.name!r}")
        out.append(max(1, math.floor(phase.epochs * per_epoch + 0.5)))
    return out


def total_steps(phases: Sequence[Phase], steps_per_epoch: StepsPerEpoch) -> int:
    """Optimizer steps of the whole schedule (for the LR scheduler)."""
    return sum(phase_steps(phases, steps_per_epoch))


class PhaseClock:
    """Maps a global optimizer step (0-based) to the phase in force, precomputed once."""

    def __init__(self, phases: Sequence[Phase], steps_per_epoch: StepsPerEpoch) -> None:
        if not phases:
            raise ValueError("a schedule needs at least one phase")
        self.phases = list(phases)
        self.steps = phase_steps(self.phases, steps_per_epoch)
        self.starts = [sum(self.steps[:i]) for i in range(len(self.steps))]
        self.total_steps = sum(self.steps)

    def phase_at(self, step: int) -> tuple[int, Phase]:
        """``(phase_index, phase)`` in force at optimizer step ``step``."""
        if not 0 <= step < self.total_steps:
            raise ValueError(f"step {step} is outside the schedule's {self.total_steps} steps")
        index = bisect.bisect_right(self.starts, step) - 1
        return index, self.phases[index]

    def step_in_phase(self, step: int) -> int:
        """Steps already taken within the phase in force at ``step`` (0-based)."""
        index, _ = self.phase_at(step)
        return step - self.starts[index]


def phase_at(
    phases: Sequence[Phase], step: int, steps_per_epoch: StepsPerEpoch
) -> tuple[int, Phase]:
    """``(phase_index, phase)`` in force at 0-based optimizer ``step``; see :class:`PhaseClock`."""
    return PhaseClock(phases, steps_per_epoch).phase_at(step)
