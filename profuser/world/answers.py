"""How a world answer is checked: the text after the last "answer is", compared with the
canonical answer case- and punctuation-insensitively."""

from __future__ import annotations


def normalize_answer(text: str) -> str:
    """Lower-case, keep letters and digits, collapse the rest to single spaces."""
    out = "".join(ch.lower() if ch.isalnum() else " " for ch in text)
    return " ".join(out.split())


def extract_answer(text: str) -> str:
    """The answer part of a generation: after the last "answer is", else the whole text."""
    low = text.lower()
    key = "answer is"
    i = low.rfind(key)
    if i >= 0:
        text = text[i + len(key) :]
    return normalize_answer(text)


def is_correct(generation: str, answer: str) -> bool:
    """Exact match of the extracted answer, case- and punctuation-insensitive."""
    return extract_answer(generation) == normalize_answer(answer)
