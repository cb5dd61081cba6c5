#!/usr/bin/env python
"""Generate the tiny world's lm-evaluation-harness tasks (data + per-skill YAML).

Run once; the output is committed under ``profuser/tasks/world/``::

    python scripts/make_world_tasks.py            # rewrite the shipped files
    python scripts/make_world_tasks.py --check    # exit 1 if they differ from a fresh build

Items are fresh seeded draws of every skill through ``make_example`` (the same
generator as the world's held-out split, under its own seed and split name), so
they follow the held-out distribution: a new Orca system message and phrasing
per item. ``compare`` items additionally avoid every number pair that the
default world (seed 0) trains on, so that skill stays unseen as in
``split_world``. Each item carries four choices for the multiple-choice tasks
(the answer and three distractors of the same skill; ``parity`` has only its
two possible answers) and the answer for the generative tasks.

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
from collections.abc import Callable
from pathlib import Path

from profuser.world.skills import COUNTRIES, SKILLS, WorldExample, make_example

SEED = 20240601
SPLIT = "bench"
PER_SKILL = 20
N_CHOICES = 4
DATA_FILE = "data/items.jsonl"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "profuser" / "tasks" / "world"


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


def _pair(text: str) -> frozenset[int]:
    return frozenset(int(x) for x in re.findall(r"\d+", text))


def default_world_compare_pairs() -> set[frozenset[int]]:
    """Number pairs of every ``compare`` instruction the default world (seed 0) trains on."""
    from profuser.world.build import DEFAULT_SOURCES, WorldSpec, _source_examples
    from profuser.world.skills import UNSEEN_HELDOUT_SKILLS, split_world

    spec = WorldSpec()
    train, heldout = split_world(spec.n_train, spec.n_heldout_per_skill, spec.seed)
    exclude = {e.instruction for e in heldout if e.skill in UNSEEN_HELDOUT_SKILLS}
    seen = [e for e in train if e.skill == "compare"]
    for src in DEFAULT_SOURCES:
        seen += [e for e, _ in _source_examples(src, spec, exclude) if e.skill == "compare"]
    return {_pair(e.instruction) for e in seen}


def draw_items(per_skill: int = PER_SKILL, seed: int = SEED) -> list[dict]:
    """``per_skill`` distinct items of every skill, deterministic under ``seed``."""
    rng = random.Random(f"{seed}-{SPLIT}")
    avoid: dict[str, Callable[[WorldExample], bool]] = {}
    seen_pairs = default_world_compare_pairs()
    avoid["compare"] = lambda e: _pair(e.instruction) in seen_pairs
    rows: list[dict] = []
    for skill in sorted(SKILLS):
        got: list[WorldExample] = []
        instructions: set[str] = set()
        tries = 0
        while len(got) < per_skill:
            tries += 1
            if tries > 1000 * per_skill:
                raise RuntimeError(f"cannot draw {per_skill} distinct {skill} items")
            ex = make_example(skill, rng, len(rows) + len(got), SPLIT)
            if ex.instruction in instructions or avoid.get(skill, lambda e: False)(ex):
                continue
            instructions.add(ex.instruction)
            got.append(ex)
        for ex in got:
            choices, gold = choices_for(ex, rng)
            rows.append(
                {
                    "id": ex.id,
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
    for kind, metrics in (("mc", ("acc", "acc_norm")), ("gen", ("exact_match",))):
        group = f"world_{kind}"
        for skill in skills:
            files[f"{group}_{skill}.yaml"] = (
                f"{header}include: _{kind}_template_yaml\n"
                f"task: {group}_{skill}\ntask_alias: {skill}\n"
                f"dataset_kwargs:\n  skill: {skill}\n"
            )
        subtasks = "".join(f"  - {group}_{s}\n" for s in skills)
        aggregate = "".join(f"  - metric: {m}\n    weight_by_size: true\n" for m in metrics)
        files[f"_{group}.yaml"] = (
            f"{header}group: {group}\ntask:\n{subtasks}"
            f"aggregate_metric_list:\n{aggregate}metadata:\n  version: 1.0\n"
        )
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--per-skill", type=int, default=PER_SKILL)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--check", action="store_true", help="compare with the files in --out")
    args = ap.parse_args(argv)
    files = task_files(draw_items(args.per_skill, args.seed))
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
