import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]


def _losses(d: Path) -> list[float]:
    with (d / "log.csv").open() as f:
        return [
            float(r["sft_train"]) + float(r["kl_train"]) + float(r["sft_infer"])
            for r in csv.DictReader(f)
        ]


ACCELERATE = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--cpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
]


@pytest.mark.slow
def test_two_process_training_matches_one_process(mini_world: Path, tmp_path: Path) -> None:
    script = str(ROOT / "tests" / "train" / "mp_train.py")
    _run([sys.executable, script, str(mini_world), str(tmp_path / "one")])
    _run([*ACCELERATE, script, str(mini_world), str(tmp_path / "two")])
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) > 0
    for a, b in zip(one, two, strict=True):
        assert a == pytest.approx(b, rel=1e-3, abs=1e-4)
    wa = load_file(str(tmp_path / "one" / "final" / "model.safetensors"))
    wb = load_file(str(tmp_path / "two" / "final" / "model.safetensors"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_two_process_preference_phase_matches_one_process(mini_world: Path, tmp_path: Path) -> None:
    script = str(ROOT / "tests" / "train" / "mp_preference.py")
    _run([sys.executable, script, str(mini_world), str(tmp_path / "one")])
    _run([*ACCELERATE, script, str(mini_world), str(tmp_path / "two")])
    logs = []
    for run in ("one", "two"):
        with (tmp_path / run / "log.csv").open() as f:
            logs.append(list(csv.DictReader(f)))
    assert len(logs[0]) == len(logs[1]) > 0
    for a, b in zip(*logs, strict=True):  # every process's share of each window is logged
        for col in ("dpo", "margin", "accuracy"):
            assert float(a[col]) == pytest.approx(float(b[col]), rel=1e-3, abs=1e-4)
    wa = load_file(str(tmp_path / "one" / "final" / "model.safetensors"))
    wb = load_file(str(tmp_path / "two" / "final" / "model.safetensors"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=1e-4)
