import json
import time
from functools import partial
from pathlib import Path

import pytest

from profuser.demo.jobs import ready, run_all, run_seed, threads_per_job
from profuser.errors import UserError


def _spec(label: str, seed: int, tmp: Path) -> tuple:
    return (label, tmp / f"{label.replace(':', '-')}-{seed}", ["x=1", f"seed={seed}"], None)


def _record(tmp: Path, spec: tuple) -> str:
    """A stand-in run (module level, so spawned workers can import it): times it ran."""
    import torch

    start = time.time()
    if spec[0] == "main" and spec[2][0] == "meet=2":
        # both main runs must be running at once: each waits (up to a minute) for the other
        (tmp / f"started-{run_seed(spec)}").touch()
        while len(list(tmp.glob("started-*"))) < 2 and time.time() < start + 60:
            time.sleep(0.05)
    time.sleep(0.2 if spec[0] == "main" else 0.1)
    if spec[0] == "bad":
        raise UserError("bad run: stops the demo")
    line = {"label": spec[0], "seed": run_seed(spec), "start": start, "end": time.time()}
    line["threads"] = torch.get_num_threads()
    with (tmp / "log.jsonl").open("a") as f:
        f.write(json.dumps(line) + "\n")
    return f"{spec[0]}/{run_seed(spec)}"


def test_run_seed_and_readiness(tmp_path: Path) -> None:
    main0, study0, study1 = (
        _spec("main", 0, tmp_path),
        _spec("rule:x", 0, tmp_path),
        _spec("rule:x", 1, tmp_path),
    )
    assert run_seed(study1) == 1 and run_seed(("a", tmp_path, ["y=2"], None)) is None
    assert ready(main0, {0}, set())
    assert not ready(study0, {0}, set())  # its seed's main run has not finished
    assert ready(study0, {0}, {0})
    assert ready(study1, {0}, set())  # no main run of seed 1 planned (--only)
    assert threads_per_job(1) >= threads_per_job(2) >= 1


def test_one_job_runs_in_order_in_process(tmp_path: Path) -> None:
    specs = [_spec("main", 0, tmp_path), _spec("rule:x", 0, tmp_path), _spec("main", 1, tmp_path)]
    seen: list[tuple[int, str]] = []
    run_all(specs, partial(_record, tmp_path), 1, lambda i, r: seen.append((i, r)))
    assert seen == [(0, "main/0"), (1, "rule:x/0"), (2, "main/1")]


def test_two_jobs_run_side_by_side_and_studies_wait_for_their_main(tmp_path: Path) -> None:
    specs = [
        ("main", tmp_path, ["meet=2", "seed=0"], None),
        ("main", tmp_path, ["meet=2", "seed=1"], None),
        _spec("rule:x", 0, tmp_path),
        _spec("rule:y", 0, tmp_path),
    ]
    seen: dict[int, str] = {}
    run_all(specs, partial(_record, tmp_path), 2, lambda i, r: seen.__setitem__(i, r))
    assert seen == {0: "main/0", 1: "main/1", 2: "rule:x/0", 3: "rule:y/0"}
    rows = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    by = {(r["label"], r["seed"]): r for r in rows}
    main0, main1 = by[("main", 0)], by[("main", 1)]
    assert main0["start"] < main1["end"] and main1["start"] < main0["end"]  # side by side
    for study in ("rule:x", "rule:y"):
        assert by[(study, 0)]["start"] >= main0["end"]
    assert {r["threads"] for r in rows} == {threads_per_job(2)}


def test_a_failing_run_stops_the_demo_with_its_error(tmp_path: Path) -> None:
    specs = [_spec("main", 0, tmp_path), _spec("bad", 5, tmp_path), _spec("rule:x", 0, tmp_path)]
    seen: list[int] = []
    with pytest.raises(UserError, match="bad run"):
        run_all(specs, partial(_record, tmp_path), 2, lambda i, r: seen.append(i))
    assert 1 not in seen
