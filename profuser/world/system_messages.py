"""The tiny world's condensed forms of the ten Table 5 system messages, in the same order.

The world asks its questions under the condensed forms: the full messages average 54 tokens
in the world's tokenizers, more than the question and its long answer together, so they
were 40% of every sequence the world trains, generates and evaluates while carrying no
skill. Each condensed form keeps its message's instruction, so answer style can still be
read per Table 5 row (:func:`profuser.report.system_messages.table5_row`, once registered).
"""

from profuser.report.system_messages import ORCA_SYSTEM_MESSAGES, table5_row

WORLD_SYSTEM_MESSAGES: tuple[str, ...] = (
    "Complete the task faithfully. Think step-by-step.",
    "Give a detailed and long answer.",
    "Explain it to a five-year-old.",
    "Give a detailed answer.",
    "Help find information. Think step-by-step.",
    "Help find information in detail.",
    "Help people find information.",
    "Describe the task and explain your answer.",
    "Explain your answer to a five year old.",
    "Follow the instruction extremely well.",
)

__all__ = ["ORCA_SYSTEM_MESSAGES", "WORLD_SYSTEM_MESSAGES", "table5_row"]
