"""The packaged install: configs shipped in the package and found by name from any directory,
the `--config` option, and the demo leaving out what needs an extra that is missing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import profuser
from profuser.cli import _config_option, build_parser, main
from profuser.config import load_config
from profuser.configs import config_path, packaged_configs, packaged_path
from profuser.errors import ConfigError, UserError

PACKAGE = Path(profuser.__file__).resolve().parent
ROOT = PACKAGE.parent


def test_packaged_names_resolve_from_any_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert set(packaged_configs()) == {"demo", "paper"}
    demo = config_path("demo")
    assert demo == config_path("demo.yaml") == PACKAGE / "configs" / "demo.yaml"
    assert demo.is_file()
    assert load_config("paper", ["train.lr=2e-5"]).train.lr == 2e-5


def test_an_existing_file_wins_over_a_packaged_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "demo.yaml"
    mine.write_text(config_path("demo").read_text().replace("name: tiny-world", "name: mine"))
    assert config_path("demo.yaml") == Path("demo.yaml")
    assert load_config("demo.yaml").name == "mine"
    assert load_config("demo").name == "tiny-world"  # no file called "demo" here
    assert config_path(mine) == mine


@pytest.mark.parametrize("text", ["nope", "nope.yaml", "configs/demo.yaml", "accelerate/ddp"])
def test_unknown_config_is_one_line_listing_the_packaged_names(text: str, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        config_path(text)
    msg = str(err.value)
    assert msg.startswith(f"{text}: config file not found") and "\n" not in msg
    assert "packaged: demo, paper" in msg


def test_accelerate_configs_are_packaged_and_found_by_name() -> None:
    ddp = packaged_path("accelerate/ddp")
    assert ddp == packaged_path("ddp") == packaged_path("ddp.yaml")
    assert ddp == PACKAGE / "configs" / "accelerate" / "ddp.yaml" and ddp.is_file()
    assert packaged_path("paper") == config_path("paper")
    with pytest.raises(ConfigError, match=r"no packaged config 'zero9'.*accelerate/fsdp"):
        packaged_path("zero9")


def test_every_packaged_config_is_package_data() -> None:
    """The globs of pyproject.toml's package data cover every file under profuser/configs."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["profuser"]
    covered = {p for g in globs for p in PACKAGE.glob(g)}
    shipped = {p for p in (PACKAGE / "configs").rglob("*") if p.is_file() and p.suffix != ".py"}
    shipped = {p for p in shipped if "__pycache__" not in p.parts}
    assert shipped and shipped <= covered
    assert set(packaged_configs(include_accelerate=True).values()) <= covered


def test_no_shipped_file_points_at_the_old_configs_directory() -> None:
    for p in (PACKAGE / "configs").rglob("*.yaml"):
        assert "configs/" not in p.read_text(encoding="utf-8").splitlines()[0], p


def _args(*argv: str):
    args = build_parser().parse_args(list(argv))
    _config_option(args)
    return args


def test_config_option_stands_for_the_positional() -> None:
    a = _args("run", "--config", "demo", "train.lr=1e-3", "seed=2", "--out", "x")
    assert (a.config, a.overrides, a.out) == ("demo", ["train.lr=1e-3", "seed=2"], "x")
    a = _args("run", "paper", "seed=2")
    assert (a.config, a.overrides) == ("paper", ["seed=2"])
    a = _args("validate", "--config", "paper")
    assert (a.config, a.overrides) == ("paper", [])
    with pytest.raises(UserError, match="two configs given"):
        _args("run", "demo", "--config", "paper")
    with pytest.raises(UserError, match="needs a config"):
        _args("run")


def test_cli_validates_packaged_names_from_any_directory(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "demo"]) == 0
    assert capsys.readouterr().out.startswith("demo: ok (4 sources")
    assert main(["validate", "--config", "paper.yaml", "train.lr=2e-5"]) == 0
    assert main(["validate", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "packaged: demo, paper" in err
    assert main(["configs", "accelerate/cpu2"]) == 0
    assert capsys.readouterr().out.strip() == str(packaged_path("accelerate/cpu2"))
    assert main(["configs"]) == 0
    listed = capsys.readouterr().out.split()
    assert {"demo", "paper", "accelerate/ddp"} <= set(listed)


def test_demo_skips_merges_without_mergekit_with_one_notice(monkeypatch, caplog) -> None:
    import profuser.demo.runs as runs

    demo = config_path("demo")
    assert load_config(demo).merges, "the full demo merges"
    monkeypatch.setattr(runs, "mergekit_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="profuser"):
        assert runs._skip_unavailable(demo, False, []) == ["merges=[]"]
        assert runs._skip_unavailable(demo, True, []) == []  # the quick demo has no merges
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1 and "\n" not in notices[0]
    assert "MergeKit is not installed" in notices[0] and "profuser[merge]" in notices[0]
    monkeypatch.setattr(runs, "mergekit_available", lambda: True)
    assert runs._skip_unavailable(demo, False, []) == []
