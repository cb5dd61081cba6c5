"""``select``: the fusion set curated from a candidate pool (see :mod:`profuser.curate.rules`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SelectOptions(BaseModel):
    """Which of the data stage's rows (the pool) the fusion uses.

    ``rule``: a registered selection rule (``random``, ``advantage_gap``,
    ``advantage_stratified``); ``rows``: the budget of fusion rows kept (None: the whole pool,
    and no rule runs); ``seed``: the random rule's draw (and ties elsewhere).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    rule: str = "random"
    rows: int | None = Field(default=None, gt=0)
    seed: int = 0

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, v: str) -> str:
        from profuser.curate.rules import get_select_rule

        get_select_rule(v)  # a ValueError naming the registered rules
        return v
