#!/usr/bin/env python
"""Generate the tiny world's lm-evaluation-harness tasks (data + per-skill YAML).

Run once; the output is committed under ``profuser/world/tasks/``::

    python scripts/make_world_tasks.py            # rewrite the shipped files
    python scripts/make_world_tasks.py --check    # exit 1 if they differ from a fresh build

Two sets of items, each of distinct questions per skill, drawn (seeded) from the
world's fixed question partitions (``profuser.world.skills.partition_of``), which
no world ever trains on, whatever its seed:

* ``eval``: the benchmark (groups ``world_mc`` and ``world_gen``), only for reporting;
* ``dev``: for choosing defaults and ablations (groups ``worlddev_mc``, ``worlddev_gen``).

The extended world's four extra skills (``EXTRA_SKILLS``, roster ``six``) are drawn after
the eight, from a stream of their own, so the eight skills' items stay as they were; the
groups ``worldx_*`` (eval) and ``worldxdev_*`` (dev) hold all twelve skills.

Each item carries four choices for the multiple-choice tasks (the answer and three
distractors of the same skill; ``parity`` has only its two possible answers) and
the answer for the generative tasks.

Hand-written files beside the generated ones (not touched here): ``utils.py``
(dataset loader, exact-match scoring), ``_mc_template_yaml``,
``_gen_template_yaml``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

from profuser.world.skills import COUNTRIES, EXTRA_SKILLS, SKILLS, WorldExample, draw_distinct

SEED = 20240601
PER_SKILL = {"eval": 100, "dev": 60}
GROUP_PREFIX = {"eval": "world", "dev": "worlddev"}
EXTENDED_PREFIX = {"eval": "worldx", "dev": "worldxdev"}  # all twelve skills
N_CHOICES = 4
DATA_FILE = "data/items.jsonl"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "profuser" / "world" / "tasks"


def _numbers(ex: WorldExample) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", ex.instruction)]


def _near(answer: int, offsets: list[int], lo: int, hi: int) -> list[str]:
    return [str(answer + d) for d in offsets if lo <= answer + d <= hi and d != 0]


def _distractor_pool(ex: WorldExample) -> list[str]:
    """Plausible wrong answers of the same skill (the answers a confused model would give)."""
    s, ans = ex.skill, ex.answer
    if s == "capital":
        return sorted({c for _, c, _ in COUNTRIES} - {ans})
    if s == "continent":
        return sorted({k for _, _, k in COUNTRIES} - {ans})
    if s == "parity":
        return ["odd" if ans == "even" else "even"]
    if s == "initial":
        return sorted({c[0] for c, _, _ in COUNTRIES} - {ans})
    nums = _numbers(ex)
    a = int(ans)
    if s == "add":
        x, y = nums
        pool = _near(a, [-2, -1, 1, 2, 10], 0, 99) + [str(abs(x - y)), str(x * y)]
    elif s == "compare":
        small = min(nums)
        pool = [str(small)] + _near(a, [-10, -1, 1, 10], 10, 99) + _near(small, [1, -1], 10, 99)
    elif s == "next":
        (n,) = nums
        pool = [str(n), str(n - 1)] + _near(a, [1, 10], 0, 100)
    elif s == "before":
        (n,) = nums
        pool = [str(n), str(n + 1)] + _near(a, [-1, -10], 0, 100)
    elif s == "double":
        (n,) = nums
        pool = [str(n), str(n + 2), str(3 * n), str(n * n)] + _near(a, [-2, 2, 10], 0, 200)
    elif s == "half":
        (n,) = nums
        pool = [str(n), str(2 * n)] + _near(a, [-2, -1, 1, 2, 10], 0, 200)
    elif s == "triple":
        (n,) = nums
        pool = [str(n), str(2 * n), str(n + 3)] + _near(a, [-3, -1, 1, 3, 10], 0, 200)
    elif s == "tens":
        (n,) = nums
        pool = [str(n % 10), str(n)] + _near(a, [-2, -1, 1, 2], 0, 9)
    else:
        raise ValueError(f"no distractors defined for skill {s!r}")
    return sorted(set(pool) - {ans}, key=int)


def choices_for(ex: WorldExample, rng: random.Random) -> tuple[list[str], int]:
    """(shuffled choices, index of the answer)."""
    pool = _distractor_pool(ex)
    wrong = rng.sample(pool, min(N_CHOICES - 1, len(pool)))
    choices = [ex.answer, *wrong]
    rng.shuffle(choices)
    return choices, choices.index(ex.answer)


def draw_items(per_skill: dict[str, int] = PER_SKILL, seed: int = SEED) -> list[dict]:
    """``per_skill[split]`` items of distinct questions of every skill from each split's
    partition, deterministic under ``seed``."""
    rows: list[dict] = []
    draws = [(f"{seed}-{split}", split, count, SKILLS) for split, count in per_skill.items()]
    draws += [(f"{seed}-{split}-extra", split, n, EXTRA_SKILLS) for split, n in per_skill.items()]
    for stream, split, count, skills in draws:
        rng = random.Random(stream)
        for skill in sorted(skills):
            for ex in draw_distinct(skill, split, count, rng, split, len(rows)):
                choices, gold = choices_for(ex, rng)
                rows.append(
                    {
                        "id": ex.id,
                        "split": split,
                        "skill": skill,
                        "system": ex.system,
                        "question": ex.instruction,
                        "answer": ex.answer,
                        "response": ex.response,
                        "choices": choices,
                        "gold": gold,
                    }
                )
    return rows


def task_files(rows: list[dict]) -> dict[str, str]:
    """Relative path -> text of every generated file."""
    skills = sorted({r["skill"] for r in rows})
    files = {DATA_FILE: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)}
    header = "# Generated by scripts/make_world_tasks.py; do not edit.\n"
    kinds = (("mc", ("acc", "acc_norm")), ("gen", ("exact_match",)))
    splits = sorted({r["split"] for r in rows}, key=list(GROUP_PREFIX).index)
    for split, (kind, metrics) in ((sp, k) for sp in splits for k in kinds):
        aggregate = "".join(f"  - metric: {m}\n    weight_by_size: true\n" for m in metrics)
        # the eight skills' group, and the extended world's group of all twelve (each group's
        # subtasks are named <group>_<skill>, which is how reports find a subtask's skill)
        groups = [(f"{GROUP_PREFIX[split]}_{kind}", [s for s in skills if s not in EXTRA_SKILLS])]
        if any(s in EXTRA_SKILLS for s in skills):
            groups.append((f"{EXTENDED_PREFIX[split]}_{kind}", skills))
        for group, members in groups:
            for skill in members:
                files[f"{group}_{skill}.yaml"] = (
                    f"{header}include: _{kind}_template_yaml\n"
                    f"task: {group}_{skill}\ntask_alias: {skill}\n"
                    f"dataset_kwargs:\n  skill: {skill}\n  split: {split}\n"
                )
            subtasks = "".join(f"  - {group}_{s}\n" for s in members)
            files[f"_{group}.yaml"] = (
                f"{header}group: {group}\ntask:\n{subtasks}"
                f"aggregate_metric_list:\n{aggregate}metadata:\n  version: 1.0\n"
            )
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--check", action="store_true", help="compare with the files in --out")
    args = ap.parse_args(argv)
    files = task_files(draw_items(PER_SKILL, args.seed))
    if args.check:
        stale = [
            p
            for p, t in files.items()
            if not (args.out / p).is_file() or (args.out / p).read_text(encoding="utf-8") != t
        ]
        for p in stale:
            print(f"differs: {args.out / p}")
        return 1 if stale else 0
    for rel, text in files.items():
        path = args.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
