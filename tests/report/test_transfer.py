"""Per-skill transfer on hand-made eval records, against plain hand computations."""

from __future__ import annotations

import statistics

import pytest

from profuser.report.transfer import NEITHER, SOURCE_LED, TARGET_LED, skill_score, transfer_table

N = 20  # items per skill


def _right(k: int, n: int = N) -> dict[str, float]:
    """The first ``k`` of ``n`` items right."""
    return {str(i): 1.0 if i < k else 0.0 for i in range(n)}


def _record(kind: str, name: str, gen: dict[str, int], plain: int | None = None) -> dict:
    """A record with world_gen skills (k right of N each) and, optionally, a plain task."""
    items = {"world_gen": {s: _right(k) for s, k in gen.items()}}
    scores = {"world_gen": sum(gen.values()) / (N * len(gen))}
    if plain is not None:
        items["plain"] = {"all": _right(plain)}
        scores["plain"] = plain / N
    return {"kind": kind, "name": name, "scores": scores, "items": items}


# skill: target t, sources a and b, variants pf and csft (items right of 20)
SKILLS = {
    "add": dict(t=18, a=2, b=4, pf=9, csft=18),  # target-led
    "next": dict(t=2, a=4, b=18, pf=10, csft=2),  # source-led by b
    "compare": dict(t=5, a=6, b=5, pf=6, csft=5),  # a leads by 0.05 < min_lead: neither
}
PLAIN = dict(t=10, a=10, b=16, pf=13, csft=10)  # source-led by b, skill "all"


def _records() -> list[dict]:
    kinds = dict(t="source", a="source", b="source", pf="variant", csft="variant")
    names = dict(t="t", a="a", b="b", pf="profuser", csft="csft")
    return [
        _record(kinds[m], names[m], {s: v[m] for s, v in SKILLS.items()}, PLAIN[m]) for m in kinds
    ]


@pytest.fixture(scope="module")
def table() -> dict:
    return transfer_table(_records(), "t", resamples=500)


def test_kinds_leaders_and_scores(table: dict) -> None:
    gen = table["tasks"]["world_gen"]
    assert table["target"] == "source-t"
    assert [gen[s]["kind"] for s in ("add", "next", "compare")] == [TARGET_LED, SOURCE_LED, NEITHER]
    assert gen["next"]["best_source"] == "source-b" and gen["compare"]["best_source"] == "source-a"
    assert table["tasks"]["plain"]["all"]["kind"] == SOURCE_LED
    for skill, v in SKILLS.items():
        for key, m in (("source-t", "t"), ("source-b", "b"), ("variant-profuser", "pf")):
            cell = gen[skill]["scores"][key]
            assert cell["score"] == pytest.approx(v[m] / N)
            assert cell["low"] <= cell["score"] <= cell["high"]
    lead = gen["next"]["lead"]
    assert lead["estimate"] == pytest.approx((18 - 2) / N) and lead["low"] > 0
    assert gen["next"]["n"] == N


def test_takeover_retained_and_medians_match_hand_computation(table: dict) -> None:
    gen = table["tasks"]["world_gen"]
    pf, csft = "variant-profuser", "variant-csft"
    assert gen["next"]["takeover"][pf] == pytest.approx((10 - 2) / (18 - 2))
    assert gen["next"]["takeover"][csft] == pytest.approx(0.0)
    assert gen["add"]["retained"][pf] == pytest.approx(9 / 18)
    assert gen["add"]["retained"][csft] == pytest.approx(1.0)
    assert gen["compare"]["takeover"] == {} and gen["compare"]["retained"] == {}
    plain_takeover = (13 - 10) / (16 - 10)
    summary = table["variants"][pf]
    assert summary["median_takeover"] == pytest.approx(
        statistics.median([(10 - 2) / (18 - 2), plain_takeover])
    )
    assert summary["source_led"] == 2 and summary["target_led"] == 1
    assert summary["median_retained"] == pytest.approx(0.5)
    # the paired interval of (variant - target): csft equals the target on `next`
    assert gen["next"]["vs_target"][csft] == {
        "estimate": 0.0,
        "low": 0.0,
        "high": 0.0,
        "level": 0.95,
    }


def test_oracle_gap_closed_matches_hand_computation(table: dict) -> None:
    def avg(per_skill: dict[str, int], plain: int) -> float:
        gen = sum(per_skill.values()) / (N * len(per_skill))  # equal sizes: plain mean
        return (gen + plain / N) / 2

    pick = {m: {s: v[m] for s, v in SKILLS.items()} for m in ("t", "pf", "csft")}
    oracle = avg({s: max(v["t"], v["a"], v["b"]) for s, v in SKILLS.items()}, 16)
    target = avg(pick["t"], PLAIN["t"])
    assert table["oracle"]["average"] == pytest.approx(oracle)
    assert table["oracle"]["target_average"] == pytest.approx(target)
    for key, m in (("variant-profuser", "pf"), ("variant-csft", "csft")):
        got = table["variants"][key]
        assert got["average"] == pytest.approx(avg(pick[m], PLAIN[m]))
        assert got["oracle_gap_closed"] == pytest.approx(
            (avg(pick[m], PLAIN[m]) - target) / (oracle - target)
        )


def test_a_large_but_uncertain_lead_is_not_source_led() -> None:
    recs = [
        {
            "kind": "source",
            "name": "t",
            "scores": {"x": 0.0},
            "items": {"x": {"all": _right(0, 3)}},
        },
        {
            "kind": "source",
            "name": "a",
            "scores": {"x": 1 / 3},
            "items": {"x": {"all": _right(1, 3)}},
        },
        {"kind": "variant", "name": "profuser", "scores": {"x": 0.0}, "items": {}},
    ]
    entry = transfer_table(recs, "t", resamples=500)["tasks"]["x"]["all"]
    assert entry["lead"]["estimate"] == pytest.approx(1 / 3) and entry["lead"]["low"] <= 0
    assert entry["kind"] == NEITHER


def test_old_records_without_items_get_scores_but_no_intervals() -> None:
    per_skill = {"world_gen": {"add": {"exact_match": 0.9}, "next": {"exact_match": 0.1}}}
    src = {"per_skill": {"world_gen": {"add": {"exact_match": 0.2}, "next": {"exact_match": 0.8}}}}
    recs = [
        {"kind": "source", "name": "t", "scores": {"world_gen": 0.5}, "per_skill": per_skill},
        {"kind": "source", "name": "a", "scores": {"world_gen": 0.5}, **src},
        {"kind": "variant", "name": "profuser", "scores": {"world_gen": 0.5}, **src},
    ]
    table = transfer_table(recs, "t")
    add, nxt = table["tasks"]["world_gen"]["add"], table["tasks"]["world_gen"]["next"]
    assert add["scores"]["source-t"] == {"score": 0.9, "low": None, "high": None}
    assert add["kind"] == TARGET_LED and add["retained"]["variant-profuser"] == pytest.approx(
        0.2 / 0.9
    )
    # a 0.7 lead, but without items no interval can show it: not counted as source-led
    assert nxt["lead"] == {"estimate": pytest.approx(0.7), "low": None, "high": None}
    assert nxt["kind"] == NEITHER and nxt["vs_target"]["variant-profuser"] is None
    assert skill_score(recs[0], "world_gen", "all") == 0.5  # "all": the task score
    assert skill_score(recs[0], "world_gen", "parity") is None
    assert skill_score({"scores": {"plain": 0.3}}, "plain", "all") == 0.3


def test_no_target_record_gives_none() -> None:
    assert transfer_table(_records(), "not-a-source") is None
