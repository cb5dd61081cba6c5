"""lm-evaluation-harness in process: shipped world tasks, chat rendering, paper task table."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

pytest.importorskip("lm_eval")

from profuser.errors import UserError  # noqa: E402
from profuser.evaluate.harness import evaluate_model  # noqa: E402
from profuser.evaluate.tasks import (  # noqa: E402
    PAPER_TASKS,
    plan_calls,
    suite_task_names,
    task_manager,
)
from profuser.models.chat import render_prompt  # noqa: E402
from profuser.models.loading import load_causal_lm, load_tokenizer  # noqa: E402
from profuser.world import WORLD_TASKS_DIR  # noqa: E402
from profuser.world.skills import ALL_SKILLS, SKILLS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 2


def _open(world: Path, name: str):
    path = str(world / "models" / name)
    return load_tokenizer(path), load_causal_lm(path, "float32")


@pytest.fixture(scope="module")
def vicuna_run(mini_world: Path):
    tok, model = _open(mini_world, "vicuna-like")
    res = evaluate_model(
        model, tok, ["world_mc", "world_gen"], limit=LIMIT, batch_size=8, seed=0, log_samples=True
    )
    return tok, model, res


def test_every_shipped_world_task_loads_and_builds_its_docs() -> None:
    names = suite_task_names()
    groups = {"world_mc", "world_gen", "worlddev_mc", "worlddev_gen"}
    extended = {"worldx_mc", "worldx_gen", "worldxdev_mc", "worldxdev_gen"}  # all twelve skills
    per_skill = {f"{g}_{s}" for g in groups for s in SKILLS}
    per_skill |= {f"{g}_{s}" for g in extended for s in ALL_SKILLS}
    assert set(names) == per_skill | groups | extended
    loaded = task_manager(False).load(sorted(groups | extended))
    assert set(loaded["tasks"]) == per_skill
    questions: dict[str, set[str]] = {"world": set(), "worlddev": set()}
    for name, task in loaded["tasks"].items():
        docs = list(task.eval_docs)
        split = name.split("_", 1)[0].replace("worldx", "world")
        assert len(docs) == (100 if split == "world" else 60), name
        skill = name.rsplit("_", 1)[1]
        assert {d["skill"] for d in docs} == {skill}
        assert {d["split"] for d in docs} == {"eval" if split == "world" else "dev"}
        questions[split] |= {d["question"] for d in docs}
        assert all(d["system"] and d["question"] and d["answer"] for d in docs)
        if "_mc_" in name:
            assert task.OUTPUT_TYPE == "multiple_choice"
            for d in docs:
                choices = task.doc_to_choice(d)
                assert choices[task.doc_to_target(d)] == d["answer"]
                assert len(set(choices)) == len(choices) == (2 if skill == "parity" else 4)
        else:
            assert task.OUTPUT_TYPE == "generate_until"
    assert not questions["world"] & questions["worlddev"], "dev and benchmark share no question"


def test_shipped_task_files_are_what_the_script_makes() -> None:
    spec = importlib.util.spec_from_file_location("mwt", ROOT / "scripts" / "make_world_tasks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--check", "--out", str(WORLD_TASKS_DIR)]) == 0


def test_gen_scoring_extracts_the_answer() -> None:
    spec = importlib.util.spec_from_file_location("world_utils", WORLD_TASKS_DIR / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    doc = {"answer": "Nairobi"}
    assert utils.process_results(doc, ["Kenya's capital... The answer is nairobi."]) == {
        "exact_match": 1.0
    }
    assert utils.process_results(doc, ["Nairobi"])["exact_match"] == 1.0
    assert utils.process_results(doc, ["The answer is Rome."])["exact_match"] == 0.0


def test_requests_are_rendered_in_the_models_chat_template(vicuna_run) -> None:
    tok, _, res = vicuna_run
    sample = res["samples"]["world_mc_capital"][0]
    doc, args = sample["doc"], sample["arguments"]
    print("rendered world_mc request (context, continuation):", json.dumps(args[0]))
    want = render_prompt(tok, doc["system"], doc["question"])
    assert [ctx for ctx, _ in args] == [want] * len(doc["choices"])
    assert [cont for _, cont in args] == doc["choices"]
    gen = res["samples"]["world_gen_capital"][0]
    print("rendered world_gen request:", json.dumps(gen["arguments"][0][0]))
    assert gen["arguments"][0][0] == render_prompt(
        tok, gen["doc"]["system"], gen["doc"]["question"]
    )


def test_summary_has_every_skill_and_an_average(vicuna_run) -> None:
    _, _, res = vicuna_run
    assert set(res["scores"]) == {"world_mc", "world_gen"}
    assert res["scores"]["world_mc"] == res["tasks"]["world_mc"]["acc"]
    assert res["scores"]["world_gen"] == res["tasks"]["world_gen"]["exact_match"]
    for group in ("world_mc", "world_gen"):
        assert set(res["per_skill"][group]) == set(SKILLS)
        assert res["n_samples"][group] == LIMIT * len(SKILLS)
    assert res["average"] == pytest.approx(sum(res["scores"].values()) / 2)
    assert res["settings"]["chat_template"] == {"world_mc": True, "world_gen": True}


def test_same_numbers_as_lm_eval_called_directly(vicuna_run) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    tok, model, ours = vicuna_run
    raw = simple_evaluate(
        model=HFLM(pretrained=model, tokenizer=tok, batch_size=8),
        tasks=["world_mc", "world_gen"],
        task_manager=TaskManager(include_path=str(WORLD_TASKS_DIR), include_defaults=False),
        limit=LIMIT,
        apply_chat_template=True,
        log_samples=True,
        random_seed=0,
        numpy_random_seed=0,
        torch_random_seed=0,
        fewshot_random_seed=0,
    )
    assert ours["tasks"]["world_mc"]["acc"] == raw["results"]["world_mc"]["acc,none"]
    assert ours["tasks"]["world_mc"]["acc_norm"] == raw["results"]["world_mc"]["acc_norm,none"]
    assert (
        ours["tasks"]["world_gen"]["exact_match"] == raw["results"]["world_gen"]["exact_match,none"]
    )
    for skill in SKILLS:
        assert (
            ours["per_skill"]["world_mc"][skill]["acc"]
            == (raw["results"][f"world_mc_{skill}"]["acc,none"])
        )
    # Item by item: the same log-likelihoods and the same generations.
    for task, items in raw["samples"].items():
        mine = ours["samples"][task]
        assert [s["filtered_resps"] for s in mine] == [s["filtered_resps"] for s in items], task


@pytest.mark.parametrize("name", ["mpt-like", "neox-like"])
def test_padded_vocab_and_lowercasing_wordpiece_models_evaluate(mini_world: Path, name) -> None:
    tok, model = _open(mini_world, name)
    if name == "mpt-like":
        assert model.config.vocab_size > len(tok)  # the case this test is about
    res = evaluate_model(
        model, tok, ["world_mc", "world_gen"], limit=1, batch_size=8, log_samples=True
    )
    for group in ("world_mc", "world_gen"):
        assert 0.0 <= res["scores"][group] <= 1.0
        assert set(res["per_skill"][group]) == set(SKILLS)
    sample = res["samples"]["world_gen_add"][0]
    print(f"rendered {name} request:", json.dumps(sample["arguments"][0][0]))
    assert sample["arguments"][0][0] == render_prompt(
        tok, sample["doc"]["system"], sample["doc"]["question"]
    )
    # Log-likelihoods are finite (padding ids masked, not the real tokens).
    lls = [r[0] for s in res["samples"]["world_mc_add"] for r in s["filtered_resps"]]
    assert all(float("-inf") < ll < 0 for ll in lls)


def test_paper_tasks_map_to_known_lm_eval_tasks_and_metrics() -> None:
    import yaml
    from lm_eval.tasks._yaml_loader import load_yaml

    from profuser.configs import config_path

    paper = yaml.safe_load(config_path("paper").read_text())
    assert set(paper["eval"]["tasks"]) == set(PAPER_TASKS)
    index = task_manager(True).task_index
    shots = {
        "arc_challenge_25shot": 25,
        "hellaswag_10shot": 10,
        "mmlu_5shot": 5,
        "winogrande_5shot": 5,
        "gsm8k_5shot": 5,
        "truthfulqa_mc2": 0,
    }
    for name, spec in PAPER_TASKS.items():
        assert spec.num_fewshot == shots[name]
        assert spec.task in index, name
        cfg = load_yaml(index[spec.task].yaml_path, resolve_func=False)
        metric, _, filt = spec.metric.partition(",")
        listed = cfg.get("metric_list") or cfg.get("aggregate_metric_list") or []
        assert metric in {m["metric"] for m in listed}, name
        if filt:
            assert filt in {f["name"] for f in cfg["filter_list"]}, name
    calls, lm_name = plan_calls(list(PAPER_TASKS))
    assert {c.num_fewshot: set(c.lm_tasks) for c in calls} == {
        25: {"arc_challenge"},
        10: {"hellaswag"},
        5: {"mmlu", "winogrande", "gsm8k"},
        0: {"truthfulqa_mc2"},
    }
    assert not any(c.chat for c in calls)
    assert lm_name["mmlu_5shot"] == "mmlu"


def test_unknown_task_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown task 'world_nope'"):
        plan_calls(["world_mc", "world_nope"])


def test_split_continuation_tokenises_the_answer_as_the_model_generates_it(vicuna_run) -> None:
    from profuser.evaluate.harness import make_lm

    tok, model, _ = vicuna_run
    ctx = render_prompt(tok, "You are an AI assistant.", "Name the capital city of Kenya.")
    alone = tok("Nairobi", add_special_tokens=False)["input_ids"]
    plain = make_lm(model, tok)._encode_pair(ctx, "Nairobi")
    split = make_lm(model, tok, split_continuation=True)._encode_pair(ctx, "Nairobi")
    assert split == (tok(ctx, add_special_tokens=False)["input_ids"], alone)
    # lm-eval's own pairing moves the template's trailing space into the answer.
    assert plain[1] != alone
    assert tok.decode(plain[1]) == " Nairobi"


@pytest.mark.parametrize("name", ["vicuna-like", "llama-chat-like", "mpt-like", "neox-like"])
def test_own_greedy_decoding_gives_generates_answers(world_dir: Path, name) -> None:
    """eval.generation=profuser (the batched loop) and =hf (Hugging Face generate) produce the
    same world_gen answers, item by item, on every kind of source: Llama, MPT with its padded
    vocabulary, GPT-NeoX with lowercasing WordPiece."""
    tok, model = _open(world_dir, name)  # trained sources: real answers, not empty ones
    got = {}
    for generation in ("profuser", "hf"):
        res = evaluate_model(
            model,
            tok,
            ["world_gen"],
            limit=3,
            batch_size=4,
            generation=generation,
            log_samples=True,
        )
        assert res["settings"]["generation"] == generation
        got[generation] = {
            task: [s["resps"] for s in samples] for task, samples in res["samples"].items()
        }
    assert got["profuser"] == got["hf"]
    answers = [r[0][0] for rows in got["hf"].values() for r in rows]
    assert sum(bool(a.strip()) for a in answers) >= len(answers) // 2, answers
