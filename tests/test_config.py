from pathlib import Path

import pytest
import yaml

from profuser.config import RunConfig, load_config
from profuser.configs import config_path, packaged_configs
from profuser.errors import ConfigError

CONFIGS = sorted(packaged_configs().values())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_yaml_parses_and_validates(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("# Run with:"), "each YAML opens with the command that runs it"
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)


ACCELERATE = sorted(
    p for n, p in packaged_configs(include_accelerate=True).items() if n.startswith("accelerate/")
)


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_accelerate_configs_parse(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("# Run with:")
    tree = yaml.safe_load(text)
    assert tree["distributed_type"] in {"MULTI_GPU", "FSDP", "DEEPSPEED", "MULTI_CPU"}
    assert tree["num_processes"] >= 2


def test_shipped_configs_exist() -> None:
    assert {"demo.yaml", "paper.yaml"} <= {p.name for p in CONFIGS}


def test_paper_defaults_are_appendix_a() -> None:
    cfg = load_config(config_path("paper"))
    assert (cfg.advantage.temperature, cfg.advantage.top_k, cfg.advantage.top_p) == (2.0, 10, 0.95)
    assert cfg.train.lr == 1.5e-5 and cfg.train.lr_scheduler == "cosine"
    assert cfg.train.effective_batch == 128 and cfg.train.max_length == 2048
    assert cfg.schedule == "profuser"
    assert [r.strongest for r in cfg.reward_models].count(True) == 1
    assert cfg.dataset.limit == 100_000


def _base() -> dict:
    return {
        "sources": [{"name": "a", "path": "/m/a"}, {"name": "b", "path": "/m/b"}],
        "target": "a",
        "dataset": {"path": "d.jsonl"},
    }


def test_defaults_without_file() -> None:
    cfg = load_config(base=_base())
    assert cfg.train.lr == 1.5e-5 and cfg.advantage.top_k == 10


def test_overrides_apply_on_dotted_paths() -> None:
    cfg = load_config(
        base=_base(),
        overrides=[
            "train.lr=0.001",
            "sources.1.dtype=bfloat16",
            "advantage.sampling.top_p=0.5",
            "variants=[csft, fuse]",
        ],
    )
    assert cfg.train.lr == 0.001
    assert cfg.sources[1].dtype == "bfloat16"
    assert cfg.advantage.sampling.top_p == 0.5
    assert cfg.variants == ["csft", "fuse"]


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.lrr=1", "unknown key `train.lrr` (did you mean `train.lr`?)"),
        ("advantage.top_kk=3", "did you mean `advantage.top_k`"),
        ("sources.0.pth=x", "did you mean `sources.N.path`"),
        ("train.lr=abc", "`train.lr`"),
        ("train.lr=-1", "`train.lr`"),
        ("schedule=nope", "unknown schedule 'nope'"),
        ("target=zzz", "target 'zzz' is not a source"),
        ("dataset.preset=fields", "preset 'fields' needs fields"),
        ("world.sed=1", "unknown key `world.sed`"),
    ],
)
def test_bad_config_names_the_key(override: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(base=_base(), overrides=[override])
    msg = str(err.value)
    assert needle in msg
    assert "\n" not in msg


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [\n  - oops: {\n")
    with pytest.raises(ConfigError, match="bad.yaml.*not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_missing_required_key(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"sources": [{"name": "a", "path": "x"}], "target": "a"}))
    with pytest.raises(ConfigError, match="missing required key `dataset`"):
        load_config(p)


def test_custom_schedule_as_list_of_phases() -> None:
    b = _base()
    b["schedule"] = [{"name": "p1", "epochs": 1, "w1": 1, "w2": 0, "lam": 0.1, "beta": 0}]
    cfg = load_config(base=b)
    assert cfg.schedule[0].lam == 0.1
    b["schedule"][0]["lamda"] = 1
    with pytest.raises(ConfigError, match="lamda"):
        load_config(base=b)


def test_fingerprint_tracks_only_named_sections() -> None:
    a = load_config(base=_base())
    b = load_config(base=_base(), overrides=["train.lr=0.1"])
    assert a.fingerprint("dataset") == b.fingerprint("dataset")
    assert a.fingerprint("train") != b.fingerprint("train")
