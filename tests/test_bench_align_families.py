"""scripts/bench_align_families.py: one line of figures per family pair."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_prints_a_positive_time_for_every_pair(capsys) -> None:
    spec = importlib.util.spec_from_file_location(
        "baf", ROOT / "scripts" / "bench_align_families.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--repeats", "1", "--batch", "2"]) == 0
    setting, *lines = capsys.readouterr().out.strip().splitlines()
    assert setting.startswith("TOKENIZERS_PARALLELISM=")  # it moves the figures
    assert [line.split(":")[0] for line in lines] == [f"{s}->{t}" for s, t in mod.PAIRS]
    for line in lines:
        total, tokenizers = map(
            float, re.findall(r"([\d.]+) ms per pair \(tokenizers ([\d.]+)", line)[0]
        )
        assert 0 < tokenizers <= total
