"""profuser.config_checks: a loaded config checked by value and against its files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from profuser.config import load_config
from profuser.config_checks import check_config, config_problems
from profuser.config_files import first_rows, has_chat_template, looks_like_hub_id
from profuser.errors import ConfigError
from profuser.train.schedules import SCHEDULES, Phase

ROOT = Path(__file__).resolve().parents[1]


def shipped(name: str) -> Path:
    """A shipped config, in the package (profuser/configs) or at the top (configs/)."""
    for folder in (ROOT / "profuser" / "configs", ROOT / "configs"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(name)


ROW = {"id": "r1", "system_prompt": "s", "question": "q", "response": "a"}


def make_model(folder: Path, template: bool = True) -> Path:
    """A model directory as far as the checks look: a tokenizer config, with a chat template or not."""
    folder.mkdir(parents=True, exist_ok=True)
    tc = {"tokenizer_class": "PreTrainedTokenizerFast"}
    if template:
        tc["chat_template"] = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    (folder / "tokenizer_config.json").write_text(json.dumps(tc))
    return folder


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def base_tree(tmp: Path) -> dict:
    """A config whose every path exists and is right."""
    return {
        "sources": [
            {"name": "a", "path": str(make_model(tmp / "a"))},
            {"name": "b", "path": str(make_model(tmp / "b"))},
        ],
        "target": "a",
        "reward_models": [{"name": "ref", "kind": "reference"}],
        "dataset": {"path": str(write_rows(tmp / "d.jsonl", [ROW, ROW])), "id_field": "id"},
    }


def problems(tmp: Path, *overrides: str, tree: dict | None = None, files: bool = True):
    cfg = load_config(base=tree or base_tree(tmp), overrides=list(overrides))
    return config_problems(cfg, files=files)


def fields(found) -> list[str]:
    return [p.field for p in found]


@pytest.mark.parametrize("name", ["demo.yaml", "paper.yaml"])
def test_shipped_configs_pass(name: str) -> None:
    path = shipped(name)
    check_config(load_config(path), str(path))


def test_a_right_config_has_no_problem(tmp_path: Path) -> None:
    assert problems(tmp_path) == []


@pytest.mark.parametrize(
    ("override", "field", "needle"),
    [
        ("advantage.training_rule=foo", "advantage.training_rule", "min_ce, min_ce_per_byte"),
        ("advantage.inference_rule=bar", "advantage.inference_rule", "reference, rm_vote"),
        ("reward_models.0.kind=oracle", "reward_models.0.kind", "seq_cls"),
        ("reward_models.0.chat_template=zz", "reward_models.0.chat_template", "chatml"),
        ("sources.1.chat_template=vicuna", "sources.1.chat_template", "vicuna_v1.1"),
    ],
)
def test_names_against_registries(tmp_path: Path, override: str, field: str, needle: str) -> None:
    (found,) = problems(tmp_path, override, files=False)
    assert found.field == field and needle in ", ".join(found.choices)
    line = found.line("c.yaml")
    assert line.startswith(f"c.yaml: `{field}` = ") and "\n" not in line


def test_world_kind_is_registered_by_the_plugin(tmp_path: Path) -> None:
    assert problems(tmp_path, "reward_models.0.kind=verifier") == []


def test_strongest_reward_model(tmp_path: Path) -> None:
    two = "reward_models=[{name: ref, kind: reference}, {name: v, kind: verifier}]"
    (found,) = problems(tmp_path, two)
    assert found.field == "advantage.inference_rule" and "strongest" in found.what
    assert list(found.choices) == ["ref", "v"]
    assert problems(tmp_path, two, "reward_models.1.strongest=true") == []
    (found,) = problems(tmp_path, two, "advantage.inference_rule=single_rm")
    assert "strongest" in found.what
    # one reward model needs no mark; none at all leaves inference mode off under rm_vote
    assert problems(tmp_path, "reward_models=[]") == []


def test_rules_that_need_reward_models(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, "advantage.inference_rule=single_rm", "reward_models=[]")
    assert "needs a reward model" in found.what
    (found,) = problems(
        tmp_path, "advantage.inference_rule=reference", "reward_models.0.kind=verifier"
    )
    assert "kind reference" in found.what
    assert problems(tmp_path, "advantage.inference_rule=reference") == []


def test_duplicate_reward_model_names(tmp_path: Path) -> None:
    two = "reward_models=[{name: r, kind: reference}, {name: r, kind: verifier, strongest: true}]"
    assert fields(problems(tmp_path, two)) == ["reward_models.1.name"]


PHASE = "{name: p, epochs: 1, w1: 1, w2: 0, lam: 0.1, beta: 0"


def test_phase_sources_and_rm_score(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, f"schedule=[{PHASE}, sources: [a, ghost]}}]")
    assert found.field == "schedule.0.sources" and "'ghost'" in found.what
    assert list(found.choices) == ["a", "b"]
    assert problems(tmp_path, f"schedule=[{PHASE}, sources: [b]}}]") == []
    rm_order = f"schedule=[{PHASE}, subset: easy_half, order: rm_score}}]"
    assert problems(tmp_path, rm_order) == []
    (found,) = problems(tmp_path, rm_order, "reward_models=[]")
    assert found.field == "schedule.0.order" and "gt_length" in found.choices
    (found,) = problems(tmp_path, "variants=[csft, rmscore_fuse]", "reward_models=[]")
    assert found.field == "variants.1" and found.value == "rmscore_fuse"
    (found,) = problems(tmp_path, "schedule=[]")
    assert found.field == "schedule" and "profuser" in found.choices


def test_a_preset_naming_an_unknown_source(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(
        SCHEDULES,
        "only_z",
        lambda: [Phase(name="z", epochs=1, w1=0, w2=1, lam=0, beta=0, sources=["z"])],
    )
    (found,) = problems(tmp_path, "variants=[only_z]")
    assert (found.field, found.value) == ("variants.0", "only_z") and "'z'" in found.what


@pytest.mark.parametrize(
    ("path", "hub"),
    [
        ("lmsys/vicuna-7b-v1.5", True),
        ("org/name", True),
        ("name", False),
        ("a/b/c", False),
        ("/abs/path", False),
        ("./rel/x", False),
        ("~/x", False),
        ("a/..", False),
        ("", False),
    ],
)
def test_hub_id_shape(path: str, hub: bool) -> None:
    assert looks_like_hub_id(path) is hub


def test_model_paths(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone")
    (found,) = problems(tmp_path, f"sources.1.path={missing}")
    assert found.field == "sources.1.path" and "org/name" in found.what
    assert problems(tmp_path, "sources.1.path=some-org/some-model") == []
    (found,) = problems(tmp_path, "sources.1.path=not/a/hub-id")
    assert found.field == "sources.1.path"
    file = tmp_path / "weights.bin"
    file.write_bytes(b"x")
    assert fields(problems(tmp_path, f"sources.1.path={file}")) == ["sources.1.path"]
    assert fields(problems(tmp_path, f"target_path={missing}")) == ["target_path"]
    assert problems(tmp_path, "sources.1.path=world:models/x") == []  # the scheme resolves it
    assert problems(tmp_path, f"sources.1.path={missing}", files=False) == []


def test_chat_templates_of_local_models(tmp_path: Path) -> None:
    plain = make_model(tmp_path / "plain", template=False)
    assert not has_chat_template(plain)
    (found,) = problems(tmp_path, f"sources.1.path={plain}")
    assert found.field == "sources.1.chat_template" and "chatml" in found.choices
    assert problems(tmp_path, f"sources.1.path={plain}", "sources.1.chat_template=chatml") == []
    (plain / "chat_template.jinja").write_text("{{ messages }}")
    assert has_chat_template(plain)
    bare = make_model(tmp_path / "bare", template=False)
    rm = f"reward_models=[{{name: rm, kind: seq_cls, path: {bare}}}]"
    assert fields(problems(tmp_path, rm)) == ["reward_models.0.chat_template"]
    assert problems(tmp_path, rm, "reward_models.0.chat_template=llama-2") == []
    ref = f"reward_models=[{{name: rm, kind: reference, path: {bare}}}]"
    assert problems(tmp_path, ref) == []  # the reference scorer prompts with no template
    # a separate target takes the template its source entry names
    assert fields(problems(tmp_path, f"target_path={bare}")) == ["sources.0.chat_template"]
    assert problems(tmp_path, f"target_path={bare}", "sources.0.chat_template=alpaca") == []


def test_value_head_file(tmp_path: Path) -> None:
    body = make_model(tmp_path / "body")
    rm = f"reward_models=[{{name: s, kind: value_head, path: {body}}}]"
    (found,) = problems(tmp_path, rm)
    assert found.field == "reward_models.0.value_head_file"
    (body / "head.bin").write_bytes(b"x")
    (found,) = problems(tmp_path, rm, "reward_models.0.value_head_file=nope.bin")
    assert found.value == "nope.bin" and "head.bin" in found.choices
    assert problems(tmp_path, rm, "reward_models.0.value_head_file=head.bin") == []
    (body / "value_head.pt").write_bytes(b"x")
    assert problems(tmp_path, rm) == []


def test_dataset_file(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, f"dataset.path={tmp_path / 'gone.jsonl'}")
    assert found.field == "dataset.path" and "not found" in found.what
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n")
    (found,) = problems(tmp_path, f"dataset.path={csv}")
    assert ".parquet" in found.choices
    assert problems(tmp_path, "dataset.path=org/dataset") == []
    assert fields(problems(tmp_path, "dataset.path=orca")) == ["dataset.path"]
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    assert fields(problems(tmp_path, f"dataset.path={folder}")) == ["dataset.path"]


def test_dataset_fields(tmp_path: Path) -> None:
    alpaca = write_rows(tmp_path / "alpaca.jsonl", [{"id": "1", "instruction": "i", "output": "o"}])
    (found,) = problems(tmp_path, f"dataset.path={alpaca}")
    assert (found.field, found.value) == ("dataset.preset", "openorca")
    assert "missing field 'question'" in found.what and "preset 'alpaca'" in found.what
    assert list(found.choices) == ["id", "instruction", "output"]
    assert problems(tmp_path, f"dataset.path={alpaca}", "dataset.preset=alpaca") == []
    fields_map = "dataset.fields={instruction: prompt, response: output}"
    (found,) = problems(tmp_path, f"dataset.path={alpaca}", "dataset.preset=fields", fields_map)
    assert (found.field, found.value) == ("dataset.fields.instruction", "prompt")
    (found,) = problems(tmp_path, "dataset.id_field=uid")
    assert found.field == "dataset.id_field" and "'uid'" in found.what
    # a later row missing a field is named by its line
    rows = write_rows(tmp_path / "later.jsonl", [ROW, {"id": "2", "question": "q"}])
    (found,) = problems(tmp_path, f"dataset.path={rows}")
    assert "row 2: missing field 'response'" in found.what
    # content the data stage reports by row is left to it
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\xff\xfe")
    assert problems(tmp_path, f"dataset.path={bad}") == []


def test_first_rows_of_every_format(tmp_path: Path) -> None:
    import datasets

    ds = datasets.Dataset.from_list([ROW, ROW])
    ds.to_parquet(str(tmp_path / "d.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    arrow = next((tmp_path / "saved").glob("*.arrow"))
    array = tmp_path / "d.json"
    array.write_text(json.dumps([ROW] * 9))
    for path in (tmp_path / "d.parquet", tmp_path / "saved", arrow, array):
        rows = first_rows(path)
        assert rows and set(rows[0][1]) == set(ROW), path
        assert problems(tmp_path, f"dataset.path={path}") == []
    assert len(first_rows(array)) == 5
    assert fields(problems(tmp_path, f"dataset.path={arrow}", "dataset.preset=alpaca")) == [
        "dataset.preset"
    ]


def test_check_config_raises_one_line_with_the_count(tmp_path: Path) -> None:
    cfg = load_config(
        base=base_tree(tmp_path),
        overrides=["advantage.training_rule=foo", "advantage.inference_rule=bar"],
    )
    with pytest.raises(ConfigError) as err:
        check_config(cfg, "run.yaml")
    msg = str(err.value)
    assert msg.startswith("run.yaml: `advantage.training_rule` = 'foo': unknown training rule")
    assert msg.endswith("(and 1 more problem(s))") and "\n" not in msg


def test_preference_phases_are_checked_by_value(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, "variants=[implicit, profuser_po]", files=False)
    assert found.field == "advantage.sampling.n" and found.value == 1
    assert found.line("c.yaml").endswith("answers per source and prompt; set it to 2")
    assert problems(tmp_path, "variants=[implicit]", "advantage.sampling.n=2") == []
    found = problems(tmp_path, "variants=[infifpo]", "advantage.sampling.n=2", "reward_models=[]")
    assert fields(found) == ["reward_models"] and "needs reward_models" in found[0].what
    # a source named `target` would collide with the target's reference columns
    tree = base_tree(tmp_path)
    tree["sources"][1]["name"] = "target"
    assert problems(tmp_path, "advantage.sampling.n=2", tree=tree, files=False) == []
    found = problems(tmp_path, "variants=[implicit]", "advantage.sampling.n=2", tree=tree)
    assert fields(found) == ["sources.1.name"] and "give the source another name" in found[0].what


@pytest.mark.parametrize(
    ("phase", "needle"),
    [
        ("{pairing: best}", "unknown pairing rule 'best'; choose from intra_source, cross_source"),
        ("{fuse_rule: median}", "unknown reference rule 'median'; choose from mean, max"),
        ("{reference: sources}", "schedule.0.preference.reference"),
        ("{beta: 0}", "schedule.0.preference.beta"),
    ],
)
def test_a_bad_preference_field_is_named(tmp_path: Path, phase: str, needle: str) -> None:
    spec = f"schedule=[{{name: p, epochs: 1, w1: 0, w2: 0, lam: 0, beta: 0, preference: {phase}}}]"
    with pytest.raises(ConfigError) as err:
        problems(tmp_path, spec, files=False)
    assert needle in str(err.value) and "\n" not in str(err.value).strip()


def test_a_preference_phase_must_come_last(tmp_path: Path) -> None:
    pref = "{name: p, epochs: 1, w1: 0, w2: 0, lam: 0, beta: 0, preference: {}}"
    sft = "{name: s, epochs: 1, w1: 0, w2: 1, lam: 0, beta: 0}"
    with pytest.raises(ConfigError, match="a preference phase must be the schedule's last phase"):
        problems(tmp_path, f"schedule=[{pref}, {sft}]", files=False)
    assert (
        problems(tmp_path, f"schedule=[{sft}, {pref}]", "advantage.sampling.n=2", files=False) == []
    )
