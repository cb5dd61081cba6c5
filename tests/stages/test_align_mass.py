"""The align stage's summary says, per mode and source, where the teacher's mass went."""

import pyarrow.parquet as pq
import pytest

from profuser.align.vocab_map import MAP_KINDS
from profuser.io import read_json
from profuser.models.loading import load_tokenizer
from profuser.report.alignment import alignment_markdown, alignment_section
from profuser.stages.align import COUNT_COLUMNS, turn_end_pairs


@pytest.fixture(scope="module")
def aligned_run(full_run):
    """The shared small run (tests/stages/conftest.py): its align stage's summary."""
    cfg, out, summaries, _ = full_run
    return cfg, out, read_json(out / "align" / "manifest.json")["summary"]


def test_summary_has_the_mass_of_every_source(aligned_run) -> None:
    cfg, out, summary = aligned_run
    names = {s.name for s in cfg.sources}
    for mode in ("train_mode", "infer_mode"):
        mass = summary[mode]["mass"]
        assert mass and set(mass) <= names
        for src, row in mass.items():
            assert set(row) == {"positions_aligned", *MAP_KINDS, "stored_mass"}
            assert sum(row[k] for k in MAP_KINDS) == pytest.approx(1.0, abs=5e-5), src
            assert 0.0 < row["positions_aligned"] <= 1.0 and 0.0 < row["stored_mass"] <= 1.0
        # The target's own tokenizer (vicuna-like and llama-chat-like share one) maps
        # every token onto itself.
        for same in {"vicuna-like", "llama-chat-like"} & set(mass):
            assert mass[same]["positions_aligned"] == 1.0 and mass[same]["exact"] == 1.0
        # The counts are stored per example, so the summary reads back the whole store.
        table = pq.read_table(next((out / "align" / mode).glob("shard-*.parquet")))
        assert set(COUNT_COLUMNS) <= set(table.schema.names)
    assert summary["train_mode"]["aligned_fraction"] <= 1.0


def test_end_of_turn_tokens_go_to_the_targets(aligned_run) -> None:
    cfg, _, summary = aligned_run
    by_name = {s.name: s for s in cfg.sources}
    target = load_tokenizer(by_name[cfg.target].path, by_name[cfg.target].chat_template)
    chatml = load_tokenizer(by_name["mpt-like"].path, by_name["mpt-like"].chat_template)
    pairs = turn_end_pairs(chatml, target)
    im_end = chatml.convert_tokens_to_ids("<|im_end|>")
    assert pairs == {chatml.eos_token_id: target.eos_token_id, im_end: target.eos_token_id}
    assert turn_end_pairs(target, target) == {target.eos_token_id: target.eos_token_id}
    # a chatml target ends its turns with <|im_end|>
    assert set(turn_end_pairs(target, chatml).values()) == {im_end}
    # with the end-of-turn marker mapped, next to nothing a source proposes is dropped on
    # this world (the byte-level target spells any text; <|im_start|> would still be)
    for mode in ("train_mode", "infer_mode"):
        assert all(row["dropped"] <= 1e-3 for row in summary[mode]["mass"].values())


def test_report_section(aligned_run) -> None:
    cfg, _, summary = aligned_run
    section = alignment_section(summary)
    assert set(section) == {"train_mode", "infer_mode"}
    lines = alignment_markdown(section, cfg.target)
    assert lines[0].startswith("## Teacher mass in the target's vocabulary")
    rows = [line for line in lines if line.startswith("| training") or line.startswith("| infer")]
    assert len(rows) == sum(len(section[m]["mass"]) for m in section)
    assert all(row.count("%") == 6 for row in rows)
    assert alignment_section({}) == {} and alignment_markdown({}, "t") == []


def test_batched_stage_stores_what_row_by_row_alignment_gives(aligned_run) -> None:
    """The stage aligns answers in batches (`TokenAligner.align_batch`); every stored row
    is what one answer's own alignment gives, with its ids from `encode_turn` as before."""
    import numpy as np

    from profuser.align import TokenAligner
    from profuser.align.project import count_mass
    from profuser.io.shards import read_rows_file
    from profuser.models.chat import encode_turn
    from profuser.teacher.storage import DistributionReader

    cfg, out, _ = aligned_run
    by_name = {s.name: s for s in cfg.sources}
    toks = {n: load_tokenizer(s.path, s.chat_template) for n, s in by_name.items()}
    target = toks[cfg.target]
    rows = {r["id"]: r for r in read_rows_file(out / "data" / "train.parquet")}
    winners = {r["id"]: r["winner"] for r in read_rows_file(out / "teacher/selection.parquet")}
    chosen = {r["id"]: r for r in read_rows_file(out / "score/chosen.parquet")}
    aligners = {}
    checked = 0
    for mode, sub in (("train_mode", "gt"), ("infer_mode", "own")):
        for stored in DistributionReader(out / "align" / mode):
            row = rows[stored.example_id]
            if mode == "train_mode":
                answer, src = row["response"], winners[row["id"]]
            else:
                answer, src = chosen[row["id"]]["answer"], chosen[row["id"]]["winner"]
            assert stored.scalars["source"] == src
            rec = DistributionReader(out / "teacher" / src / sub).get(row["id"])
            if src not in aligners:
                aligners[src] = al = TokenAligner(toks[src], target)
                al.vocab_map = al.vocab_map.with_pairs(turn_end_pairs(toks[src], target))
            al = aligners[src]
            turn = encode_turn(toks[src], row["system"], row["instruction"], answer)
            t_ids = encode_turn(target, row["system"], row["instruction"], answer).answer_ids
            alignment = al.align(answer, turn.answer_ids[: len(rec.ids)], t_ids)
            proj = al.project(alignment, rec.ids, rec.logprobs, policy=cfg.advantage.unaligned)
            n = len(alignment.source_ids)
            how = al.vocab_map.lookup_how(rec.ids[:n], alignment.source_contexts())
            count = count_mass(alignment.target_to_source, rec.ids[:n], rec.logprobs[:n], how)
            ids = np.where(proj.mask[:, None], proj.ids, -1)
            ids = np.take_along_axis(ids, np.argsort(ids < 0, axis=1, kind="stable"), 1)
            assert np.array_equal(stored.ids, ids), stored.example_id
            assert stored.scalars["aligned"] == int(proj.aligned.sum())
            assert stored.scalars["anchored"] == count.anchored
            assert stored.scalars["positions"] == count.positions
            checked += 1
    assert checked > 0
