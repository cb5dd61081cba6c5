from collections import Counter

from profuser.world.skills import (
    SKILLS,
    UNSEEN_HELDOUT_SKILLS,
    extract_answer,
    generate_examples,
    is_correct,
    split_world,
)
from profuser.world.system_messages import ORCA_SYSTEM_MESSAGES


def test_generator_is_deterministic_under_seed() -> None:
    assert generate_examples(50, 7) == generate_examples(50, 7)
    assert generate_examples(50, 7) != generate_examples(50, 8)


def test_skills_system_messages_and_long_gt() -> None:
    train, heldout = split_world(600, 10, seed=0)
    assert len(SKILLS) >= 5
    assert set(Counter(e.skill for e in train)) == set(SKILLS)
    assert Counter(e.skill for e in heldout) == {k: 10 for k in SKILLS}
    for e in train[:200]:
        assert e.system in ORCA_SYSTEM_MESSAGES
        assert len(e.response) > 3 * len(e.short), "GT answers explain their steps"
        assert is_correct(e.response, e.answer) and is_correct(e.short, e.answer)


def test_heldout_is_unseen_where_the_space_allows() -> None:
    train, heldout = split_world(600, 10, seed=0)
    seen = {e.instruction for e in train}
    for e in heldout:
        if e.skill in UNSEEN_HELDOUT_SKILLS:
            assert e.instruction not in seen


def test_answer_extraction() -> None:
    assert extract_answer("Blah blah. The answer is Mexico City.") == "mexico city"
    assert extract_answer("  42 ") == "42"
    assert is_correct("the answer is paris", "Paris")
    assert not is_correct("The answer is 41.", "42")
