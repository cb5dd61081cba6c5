"""The tiny world: four small heterogeneous sources, a reward model and skill benchmarks
(the extended world, roster ``six``: six sources and twelve skills),
built and trained here, offline (``profuser world``; how it plugs in: docs/architecture.md).

Importing this package plugs the world into the library through the registries any
plugin uses: the ``world:`` path scheme, the ``verifier`` reward-model kind, the
``world_*`` lm-eval task suite and the condensed Table 5 system messages.
"""

from __future__ import annotations

from pathlib import Path

from profuser.evaluate.tasks import TaskSuite, register_task_suite
from profuser.paths import register_path_scheme
from profuser.report.system_messages import register_system_message_forms
from profuser.reward.registry import register_reward_kind
from profuser.world.resolve import WORLD_SCHEME
from profuser.world.system_messages import WORLD_SYSTEM_MESSAGES

WORLD_TASKS_DIR = Path(__file__).resolve().parent / "tasks"
# headline metric of each world group: the benchmark (``world_*``, for reporting only) and the
# dev split (``worlddev_*``, for choosing defaults); their questions are never trained on.
WORLD_GROUPS: dict[str, str] = {
    "world_mc": "acc",
    "world_gen": "exact_match",
    "worlddev_mc": "acc",
    "worlddev_gen": "exact_match",
    # the extended world's (roster ``six``) twelve skills: the eight and ``EXTRA_SKILLS``
    "worldx_mc": "acc",
    "worldx_gen": "exact_match",
    "worldxdev_mc": "acc",
    "worldxdev_gen": "exact_match",
}
KNOWLEDGE_SKILLS = ("capital", "continent")  # the rest are reasoning (Table 2's kinds)


def _load_verifier(cfg, device=None, **kwargs):  # noqa: ANN001
    from profuser.world.verifier import load_verifier

    return load_verifier(cfg, device, **kwargs)


def register() -> None:
    """Plug the world in (idempotent; done on import)."""
    register_path_scheme(WORLD_SCHEME)
    register_reward_kind("verifier", _load_verifier, binary=True)
    register_system_message_forms(WORLD_SYSTEM_MESSAGES)
    knowledge = tuple(f"{g}_{s}" for g in WORLD_GROUPS for s in KNOWLEDGE_SKILLS)
    register_task_suite(
        TaskSuite("world", WORLD_TASKS_DIR, dict(WORLD_GROUPS), {"knowledge": knowledge})
    )


register()
