"""Which benchmarks a run may name, and how they are grouped into lm-eval calls.

* Task suites that plugins register (:func:`register_task_suite`): a folder of lm-eval
  YAMLs rendered through the evaluated model's chat template, zero-shot, with no network
  access. The tiny world registers ``world_mc`` / ``world_gen`` (and the dev split's
  ``worlddev_*``), one subtask per skill (``world_mc_add`` ...).
* The paper's six benchmarks (:data:`PAPER_TASKS`) with the Open LLM Leaderboard v1
  settings (plain few-shot prompts, no chat template).
* Any other task name lm-eval knows (its own default settings).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from profuser.errors import UserError


@dataclass(frozen=True)
class TaskSuite:
    """A folder of lm-eval task YAMLs and the headline metric of each group in it
    (a group's subtasks are named ``<group>_<skill>``)."""

    name: str
    include_dir: Path
    groups: dict[str, str] = field(default_factory=dict)
    # Table 2's kinds (knowledge, reasoning, safety) of some tasks; the rest count as reasoning
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)


TASK_SUITES: dict[str, TaskSuite] = {}


def register_task_suite(suite: TaskSuite) -> None:
    """Make the tasks in ``suite.include_dir`` nameable in ``eval.tasks``."""
    TASK_SUITES[suite.name] = suite
    task_manager.cache_clear()


def suite_groups() -> dict[str, str]:
    """Every registered group -> its headline metric."""
    return {g: m for s in TASK_SUITES.values() for g, m in s.groups.items()}


@dataclass(frozen=True)
class PaperTask:
    """One of the paper's benchmarks: lm-eval task, shots and the metric reported."""

    task: str  # lm-eval task or group name
    num_fewshot: int
    metric: str  # lm-eval metric key without the ",none" filter suffix


# Section 4.1.4: the Open LLM Leaderboard (v1) settings.
PAPER_TASKS: dict[str, PaperTask] = {
    "arc_challenge_25shot": PaperTask("arc_challenge", 25, "acc_norm"),
    "hellaswag_10shot": PaperTask("hellaswag", 10, "acc_norm"),
    "mmlu_5shot": PaperTask("mmlu", 5, "acc"),
    "winogrande_5shot": PaperTask("winogrande", 5, "acc"),
    "gsm8k_5shot": PaperTask("gsm8k", 5, "exact_match,strict-match"),
    "truthfulqa_mc2": PaperTask("truthfulqa_mc2", 0, "acc"),
}


class _DropCustomDatasetNotice(logging.Filter):
    """lm-eval warns on every task that loads its data through ``custom_dataset`` (suite
    tasks do, to find their data beside the YAML): not worth a warning here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed" not in record.getMessage()


@lru_cache(maxsize=2)
def task_manager(include_defaults: bool = False) -> Any:
    """An lm-eval ``TaskManager`` that knows the registered suites (and lm-eval's own tasks
    when asked). Indexing lm-eval's thousands of built-in YAMLs takes seconds, so the
    suites-only manager leaves them out; both are built once per process."""
    from lm_eval.tasks import TaskManager

    task_log = logging.getLogger("lm_eval.api.task")
    if not any(isinstance(f, _DropCustomDatasetNotice) for f in task_log.filters):
        task_log.addFilter(_DropCustomDatasetNotice())
    dirs = [str(s.include_dir) for s in TASK_SUITES.values()]
    return TaskManager(include_path=dirs or None, include_defaults=include_defaults)


def suite_task_names() -> list[str]:
    """Every task and group name of the registered suites."""
    return sorted(task_manager(False).all_tasks) if TASK_SUITES else []


@dataclass(frozen=True)
class LmEvalCall:
    """One ``simple_evaluate`` call: tasks sharing shots and prompt format."""

    lm_tasks: tuple[str, ...]
    num_fewshot: int | None
    chat: bool
    offline: bool  # a registered suite: its data is local, so the hub is switched off


def plan_calls(tasks: list[str]) -> tuple[list[LmEvalCall], dict[str, str]]:
    """Group requested names into lm-eval calls; also name -> lm-eval task name.

    Raises a `UserError` naming the unknown task and the choices.
    """
    if len(set(tasks)) != len(tasks):
        raise UserError(f"eval.tasks lists a task twice: {tasks}")
    suite = set(suite_task_names())
    lm_name: dict[str, str] = {}
    suite_tasks: list[str] = []
    by_shots: dict[int | None, list[str]] = {}
    others = [t for t in tasks if t not in suite and t not in PAPER_TASKS]
    if others:
        known = set(task_manager(True).all_tasks)
        unknown = [t for t in others if t not in known]
        if unknown:
            raise UserError(
                f"eval.tasks: unknown task {unknown[0]!r}; use one of "
                f"{', '.join(sorted(suite_groups()) + sorted(PAPER_TASKS))} or an lm-eval task name"
            )
    for t in tasks:
        if t in suite:
            suite_tasks.append(t)
            lm_name[t] = t
        elif t in PAPER_TASKS:
            spec = PAPER_TASKS[t]
            by_shots.setdefault(spec.num_fewshot, []).append(spec.task)
            lm_name[t] = spec.task
        else:
            by_shots.setdefault(None, []).append(t)
            lm_name[t] = t
    if len(set(lm_name.values())) != len(lm_name):
        raise UserError(f"eval.tasks names one lm-eval task twice: {tasks}")
    calls = [LmEvalCall(tuple(suite_tasks), None, True, True)] if suite_tasks else []
    calls += [LmEvalCall(tuple(v), k, False, False) for k, v in by_shots.items()]
    return calls, lm_name


def headline_metric(name: str, metrics: dict[str, float]) -> str:
    """The metric reported for ``name``: the paper table's, the suite group's, else acc,
    acc_norm, exact_match or the first one lm-eval reports."""
    if name in PAPER_TASKS:
        return PAPER_TASKS[name].metric
    for group, metric in suite_groups().items():
        if name == group or name.startswith(group + "_"):
            return metric
    for metric in ("acc", "acc_norm", "exact_match"):
        if metric in metrics:
            return metric
    plain = [m for m in metrics if "_stderr" not in m]
    if not plain:
        raise UserError(f"lm-eval reported no metric for task {name!r}")
    return plain[0]
