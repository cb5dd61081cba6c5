"""Reward models: the scorers that vote in inference mode (paper, section 3.2 and appendix E).

Every kind implements :class:`RewardModel` (``score(prompts, answers,
references) -> [N]`` floats, NaN for rows that failed) and is loaded from a
:class:`~profuser.config.RewardModelConfig` by :func:`load_reward_model`.
"""

from profuser.reward.base import RewardModel
from profuser.reward.custom_code import CustomCodeRewardModel
from profuser.reward.reference import LexicalScorer, ReferenceRewardModel
from profuser.reward.registry import REWARD_KINDS, load_reward_model, register_reward_kind
from profuser.reward.seq_cls import SeqClsRewardModel
from profuser.reward.value_head import ValueHeadRewardModel

__all__ = [
    "REWARD_KINDS",
    "CustomCodeRewardModel",
    "LexicalScorer",
    "ReferenceRewardModel",
    "RewardModel",
    "SeqClsRewardModel",
    "ValueHeadRewardModel",
    "load_reward_model",
    "register_reward_kind",
]
