"""The ten most frequent Orca system messages (the paper's appendix B, Table 5), and other
forms of the same ten rows that a plugin registers, so reports can group answers by row.
"""

from __future__ import annotations

ORCA_SYSTEM_MESSAGES: tuple[str, ...] = (
    "You are an AI assistant. The user will give you a task. Your goal is to complete the task as faithfully as you can. While performing the task, think step-by-step and justify your steps.",
    "You are an AI assistant. You will be given a task. You must generate a detailed and long answer.",
    "You are a helpful assistant who always provides explanations. Think like you are answering a five-year-old.",
    "You are an AI assistant. Provide a detailed answer so the user doesn't need to search outside to understand the answer.",
    "You are an AI assistant that helps people find information. The user will give you a question. Your task is to answer as faithfully as you can. While answering, think step-by-step and justify your answer.",
    "You are an AI assistant that helps people find information. Provide a detailed answer so user don't need to search outside to understand the answer.",
    "You are an AI assistant that helps people find information.",
    "You are an AI assistant. You should describe the task and explain your answer. While answering a multiple choice question, first output the correct answer(s). Then explain why other answers are wrong. You might need to use additional knowledge to answer the question.",
    "You should describe the task and explain your answer. While answering a multiple choice question, first output the correct answer(s). Then explain why other answers are wrong. Think like you are answering to a five year old.",
    "You are an AI assistant that follows instruction extremely well. Help as much as you can.",
)

# Other spellings of the ten rows, in the same order (e.g. the tiny world's condensed forms).
_FORMS: list[tuple[str, ...]] = [ORCA_SYSTEM_MESSAGES]


def register_system_message_forms(messages: tuple[str, ...]) -> None:
    """Make ``messages`` (one per Table 5 row, in order) count as those rows in reports."""
    if len(messages) != len(ORCA_SYSTEM_MESSAGES):
        raise ValueError(f"need one message per Table 5 row ({len(ORCA_SYSTEM_MESSAGES)})")
    if messages not in _FORMS:
        _FORMS.append(messages)


def table5_row(system: str) -> int | None:
    """The Table 5 row (1-10) of an Orca message or of a registered form; None for others."""
    for messages in _FORMS:
        if system in messages:
            return messages.index(system) + 1
    return None
