"""Advantage evaluation: which source is best for each example, and its compact distribution.

* :mod:`~profuser.advantage.compress`: full logits to top-k / top-p log-probs (appendix A).
* :mod:`~profuser.advantage.vote`: the paper's reward-model vote (inference mode).
* :mod:`~profuser.advantage.selection`: named training- and inference-mode rules, win shares.
* :mod:`~profuser.advantage.reference`: BLEU + ROUGE + BERTScore against the GT answer.
"""

from profuser.advantage.compress import NonFiniteLogitsError, compress_logits
from profuser.advantage.selection import (
    INFERENCE_RULES,
    TRAINING_RULES,
    Selection,
    get_inference_rule,
    get_training_rule,
    win_share,
)
from profuser.advantage.vote import rm_vote

__all__ = [
    "INFERENCE_RULES",
    "TRAINING_RULES",
    "NonFiniteLogitsError",
    "Selection",
    "compress_logits",
    "get_inference_rule",
    "get_training_rule",
    "rm_vote",
    "win_share",
]
