"""A loaded config checked by value: everything that can be checked without loading weights.

:func:`profuser.config.load_config` checks types and ranges; this checks what the registries
and the files decide: rule, kind, schedule and chat-template names against their registries;
the phases of every schedule the run trains (their ``sources`` name sources of the config,
an ``rm_score`` curriculum has reward models to score with); that the inference rule finds
the reward models it needs (exactly one ``strongest`` of several); and, with ``files``, the
model paths, chat templates, value heads and the dataset's first rows
(:mod:`profuser.config_files`). Each problem is one line naming the config file, the field,
its value and the valid choices.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

from profuser.advantage.selection import INFERENCE_RULES, TRAINING_RULES
from profuser.config import RunConfig
from profuser.config_files import Problem, dataset_problems, model_problems
from profuser.errors import ConfigError
from profuser.models.chat_templates import CHAT_TEMPLATES
from profuser.reward.registry import REWARD_KINDS
from profuser.train.schedules import SCHEDULES, Order, Phase, get_schedule

__all__ = ["Problem", "check_config", "config_problems"]


def check_config(cfg: RunConfig, origin: str, *, files: bool = True) -> None:
    """Raise a one-line :class:`ConfigError` for the first problem of ``cfg`` (and how many
    more there are); ``origin`` (the config file) opens the line. ``files=False`` checks only
    the values, not the paths and files they name."""
    problems = config_problems(cfg, files=files)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ConfigError(problems[0].line(str(origin)) + more)


def config_problems(cfg: RunConfig, *, files: bool = True) -> list[Problem]:
    """Every problem found: names, reward models, schedules, then (``files``) files."""
    out = _names(cfg) + _reward_models(cfg) + _schedules(cfg)
    if files:
        out += model_problems(cfg) + dataset_problems(cfg.dataset)
    return out


def _names(cfg: RunConfig) -> list[Problem]:
    out: list[Problem] = []
    for i, s in enumerate(cfg.sources):
        if s.chat_template is not None and s.chat_template not in CHAT_TEMPLATES:
            what = "unknown chat template"
            out.append(
                Problem(f"sources.{i}.chat_template", s.chat_template, what, sorted(CHAT_TEMPLATES))
            )
    adv = cfg.advantage
    if adv.training_rule not in TRAINING_RULES:
        what = "unknown training rule"
        out.append(
            Problem("advantage.training_rule", adv.training_rule, what, sorted(TRAINING_RULES))
        )
    if adv.inference_rule not in INFERENCE_RULES:
        what = "unknown inference rule"
        out.append(
            Problem("advantage.inference_rule", adv.inference_rule, what, sorted(INFERENCE_RULES))
        )
    return out


def _reward_models(cfg: RunConfig) -> list[Problem]:
    out: list[Problem] = []
    rms = cfg.reward_models
    seen: set[str] = set()
    for i, r in enumerate(rms):
        if r.name in seen:
            what = "repeats the name of another reward model; names must be unique"
            out.append(Problem(f"reward_models.{i}.name", r.name, what))
        seen.add(r.name)
        if r.kind not in REWARD_KINDS:
            out.append(
                Problem(
                    f"reward_models.{i}.kind",
                    r.kind,
                    "unknown reward-model kind",
                    sorted(REWARD_KINDS),
                )
            )
        if r.chat_template is not None and r.chat_template not in CHAT_TEMPLATES:
            out.append(
                Problem(
                    f"reward_models.{i}.chat_template",
                    r.chat_template,
                    "unknown chat template",
                    sorted(CHAT_TEMPLATES),
                )
            )
    rule = cfg.advantage.inference_rule
    names = [r.name for r in rms]
    strongest = [r.name for r in rms if r.strongest]
    if rule in ("rm_vote", "single_rm") and len(rms) >= 2 and len(strongest) != 1:
        role = "breaks the vote's ties" if rule == "rm_vote" else "is the one trusted"
        what = (
            f"{len(rms)} reward models need exactly one marked `strongest: true` (it {role}), "
            f"got {len(strongest)}"
        )
        out.append(Problem("advantage.inference_rule", rule, what, names, "mark one of"))
    if rule == "single_rm" and not rms:
        what = "needs a reward model, and reward_models is empty"
        out.append(Problem("advantage.inference_rule", rule, what))
    if rule == "reference" and not any(r.kind == "reference" for r in rms):
        what = "needs a reward model of kind reference (add `{name: reference, kind: reference}`)"
        out.append(
            Problem("advantage.inference_rule", rule, what, ["rm_vote", "single_rm"], "or choose")
        )
    return out


def _phase_problems(
    field: str, value: object, phases: Sequence[Phase], cfg: RunConfig, preset: bool
) -> list[Problem]:
    """Problems of one schedule's phases: each phase's own field for a list of phases, the
    preset's name (``field`` = ``value``) and its first problem only for a preset."""
    names = [s.name for s in cfg.sources]
    keys = [o for o in typing.get_args(Order) if o != "rm_score"]
    out: list[Problem] = []
    pref: list[Problem] = []  # a preset's own field does not fix these: they stay as they are
    for j, ph in enumerate(phases):
        where = f"{field}.{j}"
        for name in ph.sources or ():
            if name not in names:
                what = f"phase {ph.name!r} names source {name!r}, which is not a source"
                out.append(Problem(f"{where}.sources", ph.sources, what, names))
        if ph.order == "rm_score" and not cfg.reward_models:
            what = (
                f"phase {ph.name!r} orders by rm_score (the reward of the target's own answer), "
                "which needs reward_models"
            )
            out.append(Problem(f"{where}.order", ph.order, what, keys, "add them or choose"))
        pref += _preference_problems(ph, cfg)
    if preset and out:
        first = out[0]
        sources = first.field.endswith(".sources")
        label = "choose one of" if sources else "add reward models or choose"
        choices = first.choices if sources else sorted(SCHEDULES)
        return [Problem(field, value, first.what, choices, label), *pref]
    return out + pref


def _preference_problems(ph: Phase, cfg: RunConfig) -> list[Problem]:
    """A preference phase pairs answers by the strongest RM's score; its rule may need
    several answers per source and prompt."""
    from profuser.advantage.pairing import needs_samples

    if ph.preference is None:
        return []
    out = []
    if not cfg.reward_models:
        what = f"phase {ph.name!r} pairs the sources' answers by reward, which needs reward_models"
        out.append(Problem("reward_models", [], what))
    for i, src in enumerate(cfg.sources):
        if src.name == "target":  # the logprobs stage's columns are `<source>/...`, `target/...`
            what = (
                f"phase {ph.name!r} stores the target's reference log-probs under this name; "
                "give the source another name"
            )
            out.append(Problem(f"sources.{i}.name", src.name, what))
    need = needs_samples(ph.preference.pairing)
    if cfg.advantage.sampling.n < need:
        what = (
            f"phase {ph.name!r} pairs by {ph.preference.pairing}, which needs at least {need} "
            "answers per source and prompt"
        )
        out.append(
            Problem("advantage.sampling.n", cfg.advantage.sampling.n, what, [need], "set it to")
        )
    return out


def _schedules(cfg: RunConfig) -> list[Problem]:
    """The main schedule (a preset or a list of phases) and every variant preset."""
    out: list[Problem] = []
    if isinstance(cfg.schedule, list):
        if not cfg.schedule:
            what = "a schedule needs at least one phase"
            out.append(Problem("schedule", [], what, sorted(SCHEDULES), "or name a preset:"))
        out += _phase_problems("schedule", None, cfg.schedule, cfg, preset=False)
        presets = []
    else:
        presets = [("schedule", cfg.schedule)]
    presets += [(f"variants.{i}", v) for i, v in enumerate(cfg.variants)]
    for field, name in presets:
        try:
            phases = get_schedule(name)
        except (ConfigError, ValueError) as exc:  # a registered preset that does not build
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            out.append(
                Problem(field, name, f"the preset does not build ({first})", sorted(SCHEDULES))
            )
            continue
        out += _phase_problems(field, name, phases, cfg, preset=True)
    seen: set[tuple[str, str]] = set()  # two presets with one preference phase: one line
    return [p for p in out if (p.field, p.what) not in seen and not seen.add((p.field, p.what))]
