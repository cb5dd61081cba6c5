"""SIGKILL a stage at a random point, resume it, and compare with an uninterrupted run."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from profuser.cli import main
from profuser.io import read_json
from tests.stages.test_end_to_end import _config

ROOT = Path(__file__).resolve().parents[2]
DATA_STAGES = ["generate", "score", "teacher", "align"]


def _files(d: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(d)): p.read_bytes()
        for p in sorted(d.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def _run_killed(cfg: Path, out: Path, stage: str, delay: float) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "profuser.cli",
            "run",
            str(cfg),
            "--out",
            str(out),
            "--stage",
            stage,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def reference(mini_world: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("ref")
    cfg = _config(mini_world, tmp)
    tree = __import__("yaml").safe_load(cfg.read_text())
    tree["advantage"]["shard_size"] = 8  # several shards per stage, so a kill lands between them
    tree["train"]["checkpoint_every"] = 2
    cfg.write_text(__import__("yaml").safe_dump(tree))
    out = tmp / "run"
    assert main(["run", str(cfg), "--out", str(out)]) == 0
    return cfg, out


@pytest.mark.slow
@pytest.mark.parametrize("stage", [*DATA_STAGES, "train"])
def test_kill_and_resume(stage: str, reference: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, ref = reference
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(ref / "run.json", out / "run.json")
    order = ["data", *DATA_STAGES, "train"]
    for up in order[: order.index(stage)]:
        shutil.copytree(ref / up, out / up)
    delay = random.Random(stage).uniform(4.0, 12.0)  # imports take a few seconds; then work
    _run_killed(cfg, out, stage, delay)
    assert main(["run", str(cfg), "--out", str(out), "--stage", stage]) == 0
    assert read_json(out / stage / "manifest.json")["complete"]
    if stage != "train":
        assert _files(out / stage) == _files(ref / stage), f"{stage} differs after kill + resume"
        return
    for variant in ("profuser", "csft"):
        a = load_file(str(ref / "train" / variant / "final" / "model.safetensors"))
        b = load_file(str(out / "train" / variant / "final" / "model.safetensors"))
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_same_config_and_seed_give_the_same_results(
    reference: tuple[Path, Path], tmp_path: Path
) -> None:
    cfg, ref = reference
    out = tmp_path / "again"
    assert main(["run", str(cfg), "--out", str(out)]) == 0
    a = read_json(ref / "report" / "results.json")
    b = read_json(out / "report" / "results.json")
    assert a == b
