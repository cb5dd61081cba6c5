import json
from collections import Counter

import pytest

from profuser.world import WORLD_TASKS_DIR
from profuser.world.answers import extract_answer, is_correct
from profuser.world.build import source_examples, world_corpus
from profuser.world.pool import pool_examples
from profuser.world.resolve import world_spec_from
from profuser.world.reward import N_TRAIN_EXAMPLES
from profuser.world.skills import (
    ALL_SKILLS,
    DEV_QUESTIONS_MIN,
    EVAL_QUESTIONS_MIN,
    EXTRA_SKILLS,
    PARTITIONS,
    SKILL_TABLE,
    SKILLS,
    generate_examples,
    partition_of,
    partition_questions,
    phrasings_of,
    skill_weights,
    split_world,
)
from profuser.world.system_messages import WORLD_SYSTEM_MESSAGES


def _shipped_items() -> list[dict]:
    with (WORLD_TASKS_DIR / "data" / "items.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_generator_is_deterministic_under_seed() -> None:
    assert generate_examples(50, 7) == generate_examples(50, 7)
    assert generate_examples(50, 7) != generate_examples(50, 8)


def test_skills_system_messages_and_long_gt() -> None:
    train, heldout = split_world(600, 10, seed=0)
    assert len(SKILLS) >= 5
    assert set(Counter(e.skill for e in train)) == set(SKILLS)
    assert Counter(e.skill for e in heldout) == {k: 10 for k in SKILLS}
    assert len({e.instruction for e in heldout}) == len(heldout)
    for e in train[:200]:
        assert e.system in WORLD_SYSTEM_MESSAGES
        assert len(e.response) > 3 * len(e.short), "GT answers explain their steps"
        assert is_correct(e.response, e.answer) and is_correct(e.short, e.answer)


def test_partitions_split_every_question_and_keep_every_fact_learnable() -> None:
    for name, skill in SKILL_TABLE.items():
        sizes = {p: len(partition_questions(name, p)) for p in PARTITIONS}
        assert sizes["eval"] >= EVAL_QUESTIONS_MIN and sizes["dev"] >= DEV_QUESTIONS_MIN
        assert sum(sizes.values()) == len(skill.facts) * len(skill.phrasings)
        for fact in skill.facts:
            kept = phrasings_of(name, fact)
            assert sorted(i for v in kept.values() for i in v) == list(range(8))
            assert len(kept["train"]) >= 3, f"{name} {fact}: too few training phrasings"
        # Distinct (fact, phrasing) pairs are distinct question texts.
        texts = {skill.question(f, p) for f in skill.facts for p in range(len(skill.phrasings))}
        assert len(texts) == len(skill.facts) * len(skill.phrasings)
    assert partition_of("add", (2, 3), phrasings_of("add", (2, 3))["eval"][0]) == "eval"


@pytest.mark.parametrize(("seed", "roster"), [(0, "four"), (1, "four"), (0, "six")])
def test_no_benchmark_or_dev_question_is_ever_trained_on(seed: int, roster: str) -> None:
    """Eval and dev items share no question text with any source's training data, the
    tokenizers' and the RM's text, the fusion set or its candidate pool, for the default
    world spec and the extended world's (roster ``six``: six sources, twelve skills)."""
    spec = world_spec_from({"seed": seed, "roster": roster})
    train, heldout = split_world(spec.n_train, spec.n_heldout_per_skill, spec.seed, spec.skills)
    trained = {e.instruction for e in train}
    pool = pool_examples(spec.n_train, seed, spec.skills)  # the selection study's pool
    trained |= {e.instruction for e in pool}
    for src in spec.sources:
        trained |= {e.instruction for e, _ in source_examples(src, spec)}
    rm_rows = generate_examples(N_TRAIN_EXAMPLES, seed, "rm-train", skill_weights(spec.skills))
    trained |= {e.instruction for e in rm_rows}
    assert {e.skill for e in train} == set(spec.skills) == {e.skill for e in rm_rows}
    corpus = "\n".join(world_corpus(train, seed, spec.skills))
    items = _shipped_items()
    by_split = Counter((r["split"], r["skill"]) for r in items)
    for skill in spec.skills:
        assert by_split[("eval", skill)] >= 100
        assert by_split[("dev", skill)] >= 50
    questions = [r["question"] for r in items]
    assert len(set(questions)) == len(questions), "every item is a distinct question"
    leaked = [q for q in questions if q in trained]
    assert not leaked, f"{len(leaked)} benchmark questions are trained on, e.g. {leaked[:3]}"
    assert not [q for q in questions if q in corpus]
    assert not {e.instruction for e in heldout} & trained


def test_answer_extraction() -> None:
    assert extract_answer("Blah blah. The answer is Mexico City.") == "mexico city"
    assert extract_answer("  42 ") == "42"
    assert is_correct("the answer is paris", "Paris")
    assert not is_correct("The answer is 41.", "42")


def test_the_extended_worlds_items_follow_the_eight_skills_unchanged() -> None:
    """The extra skills' items come after the eight skills', from a stream of their own, so
    adding them left every item of the demo world's benchmark as it was; the ``world_*``
    groups keep the eight skills and ``worldx_*`` hold all twelve."""
    items = _shipped_items()
    extra = [i for i, r in enumerate(items) if r["skill"] in EXTRA_SKILLS]
    assert extra and min(extra) == len(items) - len(extra)
    assert {r["skill"] for r in items} == set(ALL_SKILLS)
    for group, skills in (("world_gen", SKILLS), ("worldx_mc", ALL_SKILLS)):
        text = (WORLD_TASKS_DIR / f"_{group}.yaml").read_text()
        assert sorted(
            line.split("_")[-1]
            for line in text.splitlines()
            if line.startswith("  - ") and "metric" not in line
        ) == sorted(skills)
    assert len(SKILL_TABLE) == 12 and SKILLS == ALL_SKILLS[:8]
