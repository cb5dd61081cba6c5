"""Property tests: the dataset loader and chat formatting with arbitrary unicode."""

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profuser.config import DatasetConfig
from profuser.data import load_instructions
from profuser.errors import UserError
from profuser.models.chat import encode_turn, split_turn
from profuser.models.loading import load_tokenizer

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=60)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.fixed_dictionaries({"question": TEXT, "response": TEXT, "system_prompt": TEXT}),
        min_size=1,
        max_size=6,
    )
)
def test_loader_keeps_text_exactly_or_fails_cleanly(tmp_path_factory, rows) -> None:
    path = tmp_path_factory.mktemp("fz") / "d.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    try:
        got, rep = load_instructions(DatasetConfig(path=str(path)))
    except UserError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        assert all(not r["question"].strip() or not r["response"].strip() for r in rows)
        return
    kept = [r for r in rows if r["question"].strip() and r["response"].strip()]
    assert rep.kept == len(kept) == len(got)
    assert sorted((g["instruction"], g["response"], g["system"]) for g in got) == sorted(
        (r["question"], r["response"], r["system_prompt"]) for r in kept
    )


@settings(max_examples=40, deadline=None)
@given(raw=st.binary(min_size=0, max_size=80))
def test_loader_on_arbitrary_bytes_never_crashes(tmp_path_factory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("fb") / "d.jsonl"
    path.write_bytes(raw)
    try:
        load_instructions(DatasetConfig(path=str(path)))
    except UserError as exc:
        assert "\n" not in str(exc)


def _tokenizers(world: Path):
    return [
        load_tokenizer(str(world / "models" / n))
        for n in ("vicuna-like", "llama-chat-like", "mpt-like", "neox-like")
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(system=TEXT, instruction=TEXT, answer=TEXT.filter(lambda s: s.strip() != ""))
def test_chat_formatting_round_trips(
    mini_world: Path, system: str, instruction: str, answer: str
) -> None:
    for tok in _tokenizers(mini_world):
        prompt, suffix = split_turn(tok, system or None, instruction, answer)
        full = tok.apply_chat_template(
            [
                *([{"role": "system", "content": system}] if system else []),
                {"role": "user", "content": instruction},
                {"role": "assistant", "content": answer},
            ],
            tokenize=False,
        )
        assert prompt + answer + suffix == full
        turn = encode_turn(tok, system or None, instruction, answer)
        if any(c.isalnum() for c in answer):  # normalisers may drop control characters alone
            assert turn.answer_ids, "an answer with letters or digits has tokens"
        assert all(0 <= i < len(tok) for i in turn.input_ids)
