"""Schedule presets, validation and the step -> phase clock."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from profuser.errors import ConfigError
from profuser.train.schedules import (
    SCHEDULES,
    Phase,
    PhaseClock,
    get_schedule,
    phase_at,
    phase_steps,
    register_schedule,
    resolve_schedule,
    total_steps,
    with_sources,
)

# preset -> [(epochs, w1, w2, lam, beta, subset, order)] as documented in schedules.py
EXPECTED = {
    "profuser": [
        (1, 1.0, 0.0, 0.1, 0.0, "all", "shuffle"),
        (2, 0.1, 1.0, 0.5, 0.5, "all", "shuffle"),
    ],
    "csft": [(3, 0.0, 1.0, 0.0, 0.0, "all", "shuffle")],
    "fuse": [(3, 0.0, 1.0, 0.0, 0.5, "all", "shuffle")],
    "simulfuse": [(3, 0.1, 1.0, 0.5, 0.5, "all", "shuffle")],
    "reversefuse": [
        (1, 0.0, 1.0, 0.0, 0.5, "all", "shuffle"),
        (2, 1.0, 0.1, 0.5, 0.5, "all", "shuffle"),
    ],
    "gtlen_fuse": [
        (2, 1.0, 0.0, 0.1, 0.0, "easy_half", "gt_length"),
        (4, 0.1, 1.0, 0.5, 0.5, "hard_half", "gt_length"),
    ],
    "rmscore_fuse": [
        (2, 1.0, 0.0, 0.1, 0.0, "easy_half", "rm_score"),
        (4, 0.1, 1.0, 0.5, 0.5, "hard_half", "rm_score"),
    ],
}


def test_every_preset_is_documented_here():
    assert set(EXPECTED) <= set(SCHEDULES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_weights_at_every_step(name: str):
    phases = get_schedule(name)
    spec = EXPECTED[name]
    assert [(p.epochs, p.w1, p.w2, p.lam, p.beta, p.subset, p.order) for p in phases] == spec
    spe = 10
    steps = total_steps(phases, spe)
    # every preset keeps the paper's 3-epoch budget: 30 steps at 10 steps per full epoch
    assert steps == 30
    clock = PhaseClock(phases, spe)
    expected_index = []
    for i, row in enumerate(spec):
        expected_index += [i] * round(row[0] * spe * (1.0 if row[5] == "all" else 0.5))
    for step in range(steps):
        index, phase = phase_at(phases, step, spe)
        assert (index, phase) == clock.phase_at(step)
        assert index == expected_index[step]
        epochs, w1, w2, lam, beta, _, _ = spec[index]
        assert (phase.w1, phase.w2, phase.lam, phase.beta) == (w1, w2, lam, beta)
    with pytest.raises(ValueError, match="outside the schedule"):
        clock.phase_at(steps)


def test_presets_are_fresh_copies():
    a = get_schedule("profuser")
    b = get_schedule("profuser")
    assert a == b and a is not b


def test_profuser_phase_boundary_and_rounding():
    phases = get_schedule("profuser")
    assert phase_steps(phases, 7) == [7, 14]
    odd = [Phase(name="a", epochs=0.5, w1=1, w2=0, lam=0.1, beta=0), phases[1]]
    assert phase_steps(odd, 5) == [3, 10]  # 2.5 rounds half up
    tiny = [Phase(name="t", epochs=0.01, w1=1, w2=0, lam=0, beta=0)]
    assert phase_steps(tiny, 5) == [1]  # a phase never vanishes
    clock = PhaseClock(phases, 7)
    assert clock.phase_at(6)[0] == 0 and clock.phase_at(7)[0] == 1
    assert clock.step_in_phase(7) == 0 and clock.step_in_phase(20) == 13


def test_exact_subset_steps_per_epoch_mapping():
    phases = get_schedule("gtlen_fuse")
    assert phase_steps(phases, {"easy_half": 3, "hard_half": 4}) == [6, 16]
    with pytest.raises(ValueError, match="only gives"):
        phase_steps(phases, {"all": 10})


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown schedule 'prof'.*profuser") as info:
        get_schedule("prof")
    assert isinstance(info.value, ConfigError)
    assert "csft" in str(info.value)


def test_phase_rejects_extra_and_bad_values():
    base = dict(name="p", epochs=1, w1=1, w2=0, lam=0.1, beta=0)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Phase(**base, gamma=1)
    with pytest.raises(ValidationError, match="greater than 0"):
        Phase(**{**base, "epochs": 0})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Phase(**{**base, "lam": -0.1})
    with pytest.raises(ValidationError, match="train nothing"):
        Phase(**{**base, "w1": 0})
    with pytest.raises(ValidationError, match="needs a difficulty key"):
        Phase(**base, subset="easy_half")
    with pytest.raises(ValidationError, match="'all', 'easy_half' or 'hard_half'"):
        Phase(**base, subset="middle")
    with pytest.raises(ValidationError, match="sources repeat"):
        Phase(**base, sources=["a", "a"])
    with pytest.raises(ValidationError, match="sources is empty"):
        Phase(**base, sources=[])


def test_with_sources_restricts_copies():
    phases = get_schedule("profuser")
    two = with_sources(phases, ["vicuna", "llama"])
    assert [p.sources for p in two] == [["vicuna", "llama"]] * 2
    assert all(p.sources is None for p in phases)  # originals untouched
    assert [p.model_dump(exclude={"sources"}) for p in two] == [
        p.model_dump(exclude={"sources"}) for p in phases
    ]
    with pytest.raises(ValidationError, match="sources repeat"):
        with_sources(phases, ["a", "a"])


def test_resolve_schedule_from_name_or_dicts():
    assert resolve_schedule("csft") == get_schedule("csft")
    phases = resolve_schedule(
        [{"name": "x", "epochs": 1.5, "w1": 0, "w2": 1, "lam": 0, "beta": 0.5}]
    )
    assert phases[0].epochs == 1.5 and phases[0].uses_train and not phases[0].uses_infer
    with pytest.raises(ValueError, match="at least one phase"):
        resolve_schedule([])


def test_register_schedule_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_schedule("profuser")(lambda: [])
