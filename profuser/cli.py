"""The `profuser` command: validate, run, demo, world, configs, bench."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import time
from pathlib import Path

from profuser.errors import UserError

log = logging.getLogger("profuser")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("transformers", "datasets", "httpx", "urllib3", "filelock", "lm_eval", "lm-eval"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # accelerate logs four lines per checkpoint; its warnings still show.
    logging.getLogger("accelerate").setLevel(logging.DEBUG if verbose else logging.WARNING)


def _parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return (0, 1)
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need 0 <= i < n")
    return (i, n)


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse prints the one-line error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return value


def cmd_validate(args: argparse.Namespace) -> int:
    from profuser.config import load_config
    from profuser.config_checks import check_config

    cfg = load_config(args.config, args.overrides)
    check_config(cfg, args.config)  # names, phases, rules, paths, files: no weights loaded
    print(
        f"{args.config}: ok ({len(cfg.sources)} sources, target {cfg.target}, schedule "
        f"{cfg.schedule if isinstance(cfg.schedule, str) else 'custom'})"
    )
    return 0


def _run(
    cfg_path: str,
    overrides: list[str],
    out: str | None,
    stage: str | None,
    force: bool,
    shard: str | None,
) -> Path:
    from profuser.config import load_config
    from profuser.config_checks import check_config
    from profuser.paths import resolve_paths
    from profuser.pipeline import run_pipeline

    cfg = load_config(cfg_path, overrides)
    # By value and the files it names, before any work (stages still check what they open:
    # a file can go between here and there, and a stage's failure keeps the stages done before it).
    check_config(cfg, cfg_path)
    cfg, _ = resolve_paths(cfg)
    run_dir = Path(out or cfg.output_dir)
    run_pipeline(cfg, run_dir, only=stage, force=force, shard=_parse_shard(shard))
    return run_dir


def _config_option(args: argparse.Namespace) -> None:
    """``--config NAME_OR_PATH`` stands for the positional config; a positional given as well is
    then the first ``key=value`` override (argparse fills the positional first)."""
    option = getattr(args, "config_option", None)
    if option is None:
        if getattr(args, "config", "") is None:
            raise UserError(
                f"profuser {args.command} needs a config: a file or a packaged name "
                "(demo, paper), as its first argument or with --config"
            )
        return
    if args.config is not None:
        if "=" not in args.config:
            raise UserError(f"two configs given: {args.config!r} and --config {option!r}")
        args.overrides = [args.config, *args.overrides]
    args.config = option


def cmd_run(args: argparse.Namespace) -> int:
    run_dir = _run(args.config, args.overrides, args.out, args.stage, args.force, args.shard)
    print(f"run directory: {run_dir}")
    return 0


def _print_accuracy(world_dir: Path) -> None:
    meta = json.loads((world_dir / "world.json").read_text())
    acc = meta.get("accuracy") or {}
    if not acc:
        return
    skills = sorted(next(iter(acc.values())))
    print("\nHeld-out accuracy of the tiny sources, per skill (greedy, exact match):")
    print(f"{'source':<18}" + "".join(f"{s:>10}" for s in skills) + f"{'mean':>8}")
    for name, row in acc.items():
        mean = sum(row.values()) / len(row)
        print(f"{name:<18}" + "".join(f"{row[s]:>10.2f}" for s in skills) + f"{mean:>8.2f}")


def cmd_world(args: argparse.Namespace) -> int:
    from profuser.world.build import build_world
    from profuser.world.resolve import world_spec_from

    spec = world_spec_from(dict(_kv(args.overrides)))
    d = build_world(spec)
    print(f"tiny world: {d}")
    _print_accuracy(d)
    return 0


def _kv(items: list[str]):
    import yaml

    for it in items:
        if "=" not in it:
            raise UserError(f"option {it!r} is not key=value")
        k, v = it.split("=", 1)
        yield k, yaml.safe_load(v)


def cmd_demo(args: argparse.Namespace) -> int:
    from profuser.config import load_config
    from profuser.configs import config_path
    from profuser.demo.runs import (
        demo_config,
        demo_seeds,
        only_runs,
        plan,
        run_demo,
        scaling_planned,
    )
    from profuser.pipeline import print_run_summary
    from profuser.world.resolve import materialize_world

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.time()
    cfg_path = config_path("demo")
    out = Path(args.out or ("runs/demo-quick" if args.quick else "runs/demo"))
    load_config(cfg_path, args.overrides)  # fail on a bad override before building anything
    seeds = demo_seeds(args.quick, args.seeds, args.study_seeds)
    if args.quick and args.scaling:
        raise UserError(
            "--scaling: the source-scaling study belongs to the full demo; drop --quick"
        )
    scaling = scaling_planned(args.scaling, args.only)
    chosen = only_runs(
        plan(out, args.quick, seeds, [], args.study_seeds, 1, scaling).runs, args.only
    )
    # The world the chosen runs fuse: the extended one where only the scaling study runs.
    scale_run = chosen[0] if chosen and all(r[0].startswith("scale:") for r in chosen) else None
    world_cfg = (
        demo_config(cfg_path, [*args.overrides, *scale_run[2]], scale_run[3]) if scale_run else None
    )
    _, world_dir = materialize_world(world_cfg or load_config(cfg_path, args.overrides))
    _print_accuracy(world_dir)
    run_demo(
        cfg_path,
        out,
        args.quick,
        args.overrides,
        force=args.force,
        seeds=args.seeds,
        study_seeds=args.study_seeds,
        only=args.only,
        jobs=args.jobs,
        scaling=args.scaling,
    )
    first = out / f"seed-{(args.seeds or [0])[0]}"
    if first.is_dir():
        print_run_summary(first)
    print("\n" + (out / "summary.md").read_text(encoding="utf-8"))
    print(f"demo finished in {time.time() - started:.0f} s; results in {out}")
    return 0


def cmd_configs(args: argparse.Namespace) -> int:
    from profuser.configs import packaged_configs, packaged_path

    if args.name:
        print(packaged_path(args.name))
        return 0
    for name, path in packaged_configs(include_accelerate=True).items():
        print(f"{name:<28} {path}")
    return 0


def _bench_options(items: list[str], benches: dict) -> dict[str, dict]:
    """``area.option=value`` items -> {area: {option: value}}, each option checked against the
    benchmark function's parameters."""
    import inspect

    out: dict[str, dict] = {}
    for key, value in _kv(items):
        area, _, option = key.partition(".")
        if area not in benches:
            raise UserError(
                f"bench option {key!r}: {area!r} is not one of the benchmarks run ({', '.join(benches)})"
            )
        params = list(inspect.signature(benches[area]).parameters)
        if option not in params:
            raise UserError(
                f"bench option {key!r}: {area} takes {', '.join(params) or 'no options'}"
            )
        out.setdefault(area, {})[option] = value
    return out


def cmd_bench(args: argparse.Namespace) -> int:
    from profuser.bench.registry import available

    benches = available()
    options = [n for n in args.names if "=" in n]  # area.option=value, e.g. generate.prompts=192
    names = [n for n in args.names if "=" not in n] or list(benches)
    unknown = [n for n in names if n not in benches]
    if unknown:
        raise UserError(f"unknown benchmark {unknown[0]!r}; available: {', '.join(benches)}")
    kwargs = _bench_options(options, {n: benches[n] for n in names})
    figures: dict = {}
    for n in names:
        log.info("bench %s", n)
        figures.update(benches[n](**kwargs.get(n, {})))
    if args.json:
        print(json.dumps(figures, indent=1, sort_keys=True))
    else:
        for k, v in sorted(figures.items()):
            print(f"{k:<45} {v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="profuser", description="Progressive fusion of heterogeneous LLMs."
    )
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    config_help = "a config file or a packaged config's name (demo, paper)"
    v = sub.add_parser("validate", help="check a run config (and key=value overrides)")
    v.add_argument("config", nargs="?", help=config_help)
    v.add_argument("overrides", nargs="*", metavar="key=value")
    v.add_argument("--config", dest="config_option", metavar="NAME_OR_PATH", help=config_help)
    v.set_defaults(fn=cmd_validate)

    r = sub.add_parser("run", help="run the pipeline stages in order, skipping complete ones")
    r.add_argument("config", nargs="?", help=config_help)
    r.add_argument("overrides", nargs="*", metavar="key=value")
    r.add_argument("--config", dest="config_option", metavar="NAME_OR_PATH", help=config_help)
    r.add_argument("--out", help="run directory (default: output_dir of the config)")
    r.add_argument("--stage", help="run only this stage (its upstream must be complete)")
    r.add_argument(
        "--force", action="store_true", help="accept a run directory made by another config"
    )
    r.add_argument(
        "--shard", help="i/n: this process handles shard i of n (teacher, generate, score)"
    )
    r.set_defaults(fn=cmd_run)

    d = sub.add_parser("demo", help="the tiny-world demo, end to end, offline")
    d.add_argument("overrides", nargs="*", metavar="key=value")
    d.add_argument("--out")
    d.add_argument(
        "--quick",
        action="store_true",
        help="the sources and ProFuser, one seed (see --seeds; add variants=[csft] for the "
        "SFT control)",
    )
    d.add_argument("--force", action="store_true")
    d.add_argument("--seeds", type=int, nargs="+", help="run seeds (default: 0 quick, 0 1 2 full)")
    d.add_argument(
        "--study-seeds",
        type=int,
        nargs="+",
        help="seeds of the full demo's studies, each also a run seed (default: every run seed for "
        "the implicit-fusion study, the first for the others)",
    )
    d.add_argument(
        "--only",
        nargs="+",
        metavar="RUN",
        help="run only these of the demo's runs: a family (main, rule, sources, train, select, "
        "implicit, scale) or a label (select:advantage_gap, scale:6); the summary also keeps "
        "the planned runs already finished in --out",
    )
    d.add_argument(
        "--scaling",
        action="store_true",
        help="add the source-scaling study to the full demo: ProFuser fusing 1, 2, 4 and 6 "
        "models of the extended world (six sources, twelve skills), built once and cached "
        "(--only scale runs just that study)",
    )
    d.add_argument(
        "--jobs",
        type=_positive_int,
        help="runs at once, each in its own process with the cores shared out (default: 2 for "
        "the full demo on 2 or more cores, else 1); figures depend on the threads a run gets",
    )
    d.set_defaults(fn=cmd_demo)

    w = sub.add_parser(
        "world", help="build (or reuse) the tiny world and print its sources' skills"
    )
    w.add_argument("overrides", nargs="*", metavar="key=value")
    w.set_defaults(fn=cmd_world)

    c = sub.add_parser(
        "configs",
        help="list the packaged configs (run and accelerate) with their paths, or print one's path",
    )
    c.add_argument("name", nargs="?", help="e.g. paper, accelerate/ddp")
    c.set_defaults(fn=cmd_configs)

    b = sub.add_parser("bench", help="benchmarks; prints figures measured side by side")
    b.add_argument(
        "names",
        nargs="*",
        help="benchmarks to run (default: all), and options as area.option=value "
        "(e.g. generate.prompts=192 generate.rounds=1)",
    )
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        import profuser.world  # noqa: F401  (plugs the tiny world in: world: paths, verifier, tasks)

        _config_option(args)
        return args.fn(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f" writing {exc.filename}" if exc.filename else ""
            print(
                f"error: disk full{where}; free space and run the same command again "
                "(completed stages and shards are kept)",
                file=sys.stderr,
            )
            return 2
        raise
    except KeyboardInterrupt:
        print(
            "interrupted: completed stages and shards are kept; run the same command to resume",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
