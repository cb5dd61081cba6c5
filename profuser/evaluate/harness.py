"""Benchmarks through lm-evaluation-harness, run in process on an in-memory model.

Which task names a run may use, and how they group into lm-eval calls, is
:mod:`profuser.evaluate.tasks`.

A model whose output layer is wider than its tokenizer (MPT pads its embedding)
is evaluated with the padding ids masked out: they are never real tokens, so
they get no probability in log-likelihoods and are never generated.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from profuser.errors import UserError
from profuser.evaluate.items import item_scores
from profuser.evaluate.tasks import (
    PAPER_TASKS,
    headline_metric,
    plan_calls,
    suite_groups,
    suite_task_names,
    task_manager,
)

log = logging.getLogger("profuser")


def _hflm_class() -> type:
    try:
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        raise UserError(
            "the eval stage needs lm-evaluation-harness, a dependency of profuser: "
            "pip install 'lm-eval>=0.4.3'"
        ) from None
    return HFLM


def _context_length(model: PreTrainedModel) -> int | None:
    cfg = model.config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx", "max_seq_len", "seq_length"):
        value = getattr(cfg, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def make_lm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = 8,
    split_continuation: bool = False,
    generation: str = "profuser",
):
    """An lm-eval ``HFLM`` over an in-memory model, aware of padded vocabularies and of the
    chat template's end-of-turn token (e.g. chatml's ``<|im_end|>``) as a stop token.

    ``generation="profuser"`` decodes greedy requests with profuser's batched loop
    (:func:`profuser.generate.decoding.decode`) instead of Hugging Face ``generate``; the
    output has ``generate``'s layout (prompt, new tokens, padding), so lm-eval's own
    post-processing (stop strings, decoding) is unchanged. ``"hf"``: ``generate`` always.

    ``split_continuation`` changes how a log-likelihood request is tokenised. lm-eval
    (the default) moves the context's trailing whitespace into the continuation and
    tokenises context + continuation as one string, which suits plain few-shot prompts
    ("Answer:" + " Paris"). A chat template that ends in whitespace or a newline
    (vicuna's "ASSISTANT: ", chatml's "assistant\n") then scores the answer under
    tokens the chat model never produces after its prompt. With ``split_continuation``
    the continuation is tokenised on its own, as the model generates it (and as
    profuser's teacher forcing encodes answers).
    """
    hflm = _hflm_class()
    width = model.get_output_embeddings().weight.shape[0]
    if len(tokenizer) > width:
        raise UserError(
            f"tokenizer has {len(tokenizer)} tokens but the model's output layer only {width}; "
            "the tokenizer does not belong to this model"
        )

    class ProfuserLM(hflm):
        """HFLM with padding ids (>= len(tokenizer)) masked and end-of-turn ids as eos."""

        def _model_call(self, inps, attn_mask=None, labels=None):  # noqa: ANN001
            logits = super()._model_call(inps, attn_mask, labels)
            if self.usable_vocab < logits.shape[-1]:
                logits[..., self.usable_vocab :] = float("-inf")
            return logits

        def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
            if not self.split_continuation:
                return super()._encode_pair(context, continuation)
            return self.tok_encode(context), self.tok_encode(continuation, add_special_tokens=False)

        def _model_generate(self, context, max_length, stop, **kwargs):  # noqa: ANN001
            if self.own_generation and _greedy(kwargs):
                return _decode_greedy(self, context, max_length, kwargs.get("attention_mask"))
            kwargs.setdefault("eos_token_id", self.stop_ids)
            if self.usable_vocab < self.output_width:
                kwargs.setdefault(
                    "suppress_tokens", list(range(self.usable_vocab, self.output_width))
                )
            return super()._model_generate(context, max_length, stop, **kwargs)

    lm = ProfuserLM(
        pretrained=model,
        tokenizer=tokenizer,
        batch_size=batch_size,
        max_length=_context_length(model),
    )
    lm.split_continuation = split_continuation
    lm.usable_vocab = len(tokenizer)
    lm.output_width = width
    lm.stop_ids = _stop_ids(tokenizer)
    lm.own_generation = generation == "profuser"
    return lm


def _greedy(kwargs: dict[str, Any]) -> bool:
    """Whether lm-eval asks for greedy decoding, and nothing our loop does not do."""
    handled = {"do_sample", "temperature", "attention_mask", "top_p", "top_k"}
    if set(kwargs) - handled:
        return False
    return not kwargs.get("do_sample") and not kwargs.get("temperature")


def _decode_greedy(
    lm, context: torch.Tensor, max_length: int, mask: torch.Tensor | None
) -> torch.Tensor:
    """``generate``'s output for greedy decoding, from profuser's own loop: each row's
    prompt ([B, T], left-padded), its new tokens without the end marker, then padding;
    [B, max_length]."""
    from profuser.generate.decoding import decode

    tok = lm.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    mask = torch.ones_like(context) if mask is None else mask
    prompts = [row[m.bool()].tolist() for row, m in zip(context.cpu(), mask.cpu(), strict=True)]
    new = max_length - context.shape[1]
    rows = decode(
        lm.model,
        prompts,
        [0] * len(prompts),
        pad_id=pad,
        eos_ids=lm.stop_ids or [tok.eos_token_id],
        temperature=0.0,
        top_p=1.0,
        max_new_tokens=new,
        valid_vocab=lm.usable_vocab,
        batch_size=len(prompts),
    )
    out = torch.full((len(prompts), max(0, new)), pad, dtype=context.dtype)
    for r, (toks, _) in enumerate(rows):
        out[r, : len(toks)] = torch.tensor(toks, dtype=context.dtype)
    return torch.cat([context, out.to(context.device)], dim=1)


def _stop_ids(tokenizer: PreTrainedTokenizerBase) -> list[int] | None:
    """eos plus the chat template's end-of-turn token; just eos without a chat template."""
    from profuser.models.chat import end_of_turn_ids

    try:
        return end_of_turn_ids(tokenizer) or None
    except (UserError, ValueError):  # no chat template, or one that cannot be split
        return [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else None


@contextmanager
def hub_offline(enabled: bool = True) -> Iterator[None]:
    """Forbid Hugging Face hub access (env and the already-imported libraries' switches)."""
    if not enabled:
        yield
        return
    keys = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    old_env = {k: os.environ.get(k) for k in keys}
    patched: list[tuple[Any, str, Any]] = []
    try:
        import datasets.config as ds_config
        import huggingface_hub.constants as hub_constants

        for mod, attr in (
            (hub_constants, "HF_HUB_OFFLINE"),
            (ds_config, "HF_HUB_OFFLINE"),
            (ds_config, "HF_DATASETS_OFFLINE"),
        ):
            if hasattr(mod, attr):
                patched.append((mod, attr, getattr(mod, attr)))
                setattr(mod, attr, True)
        os.environ.update(dict.fromkeys(keys, "1"))
        yield
    finally:
        for mod, attr, value in patched:
            setattr(mod, attr, value)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _metrics(entry: dict[str, Any]) -> dict[str, float]:
    """lm-eval's ``{"acc,none": x, "acc_stderr,none": s, "alias": ...}`` -> ``{"acc": x,
    "acc_stderr": s}`` (a filter other than ``none`` stays in the name)."""
    out: dict[str, float] = {}
    for key, value in entry.items():
        if "," not in key or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        metric, filt = key.split(",", 1)
        out[metric if filt == "none" else key] = float(value)
    return out


def _n_samples(raw: dict[str, Any], task: str) -> int:
    counts = raw.get("n-samples", {})
    if task in counts:
        return int(counts[task].get("effective", 0))
    return sum(_n_samples(raw, sub) for sub in raw.get("group_subtasks", {}).get(task, []))


def summarize(raw: dict[str, Any], lm_name: dict[str, str]) -> dict[str, Any]:
    """profuser's view of one or more lm-eval result dicts (merged into ``raw``)."""
    tasks: dict[str, dict[str, float]] = {}
    scores: dict[str, float] = {}
    per_skill: dict[str, dict[str, dict[str, float]]] = {}
    n_samples: dict[str, int] = {}
    results = raw.get("results", {})
    for name, lm_task in lm_name.items():
        if lm_task not in results:
            raise UserError(f"lm-eval returned no result for task {lm_task!r}")
        metrics = _metrics(results[lm_task])
        metric = headline_metric(name, metrics)
        if metric not in metrics:
            raise UserError(
                f"task {name!r}: lm-eval reported {sorted(metrics)}, not the metric {metric!r}"
            )
        tasks[name] = metrics
        scores[name] = metrics[metric]
        n_samples[name] = _n_samples(raw, lm_task)
        if lm_task in suite_groups():
            per_skill[name] = {
                sub.removeprefix(lm_task + "_"): {
                    k: v for k, v in _metrics(results[sub]).items() if "_stderr" not in k
                }
                for sub in sorted(raw.get("group_subtasks", {}).get(lm_task, []))
            }
    values = [v for v in scores.values() if not math.isnan(v)]
    return {
        "tasks": tasks,
        "scores": scores,
        "per_skill": per_skill,
        "average": sum(values) / len(values) if values else float("nan"),
        "n_samples": n_samples,
    }


def evaluate_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tasks: list[str],
    *,
    limit: int | None = None,
    batch_size: int = 8,
    seed: int = 0,
    split_continuation: bool = False,
    generation: str = "profuser",
    log_samples: bool = False,
) -> dict[str, Any]:
    """Run lm-evaluation-harness in process on ``model`` for ``tasks``.

    Returns ``{"tasks": {task: {metric: value}}, "scores": {task: headline value},
    "per_skill": {world group: {skill: {metric: value}}}, "average": mean of the
    headline values, "n_samples": {task: n}, "settings": {...}}`` and, with
    ``log_samples``, lm-eval's per-item records under ``"samples"`` and each item's
    headline value under ``"items"`` (see :func:`profuser.evaluate.items.item_scores`). ``limit``
    caps the items of every (sub)task; everything is seeded with ``seed``.
    ``split_continuation``: see :func:`make_lm` (off: lm-eval's own tokenisation).
    ``generation``: who decodes greedy generation requests, see :func:`make_lm`.
    """
    if not tasks:
        raise UserError("eval.tasks is empty; name at least one task (e.g. world_mc, world_gen)")
    from lm_eval import __version__ as lm_eval_version
    from lm_eval import simple_evaluate

    calls, lm_name = plan_calls(tasks)
    lm = make_lm(model, tokenizer, batch_size, split_continuation, generation)
    merged: dict[str, Any] = {"results": {}, "group_subtasks": {}, "n-samples": {}, "samples": {}}
    shots: dict[str, int | None] = {}
    for call in calls:
        with hub_offline(call.offline):
            raw = simple_evaluate(
                model=lm,
                tasks=list(call.lm_tasks),
                task_manager=task_manager(not call.offline),
                num_fewshot=call.num_fewshot,
                limit=limit,
                apply_chat_template=call.chat,
                log_samples=log_samples,
                random_seed=seed,
                numpy_random_seed=seed,
                torch_random_seed=seed,
                fewshot_random_seed=seed,
            )
        for key in merged:
            merged[key].update(raw.get(key) or {})
        shots.update(dict.fromkeys(call.lm_tasks, call.num_fewshot or 0))
    out = summarize(merged, lm_name)
    out["settings"] = {
        "limit": limit,
        "batch_size": batch_size,
        "seed": seed,
        "split_continuation": split_continuation,
        "generation": generation,
        "num_fewshot": {t: shots[lm_name[t]] for t in tasks},
        "chat_template": {t: lm_name[t] in set(suite_task_names()) for t in tasks},
        "lm_eval": lm_eval_version,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
    }
    if log_samples:
        out["samples"] = merged["samples"]
        headline = {t: headline_metric(t, out["tasks"][t]) for t in tasks}
        out["items"] = item_scores(merged["samples"], merged["group_subtasks"], lm_name, headline)
    return out


def evaluate_path(
    path: str,
    tasks: list[str],
    *,
    chat_template: str | None = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`evaluate_model` on a model directory or hub id (loaded through the Auto classes)."""
    from profuser.models.loading import load_causal_lm, load_tokenizer

    tok = load_tokenizer(path, chat_template, trust_remote_code)
    model = load_causal_lm(path, dtype, trust_remote_code=trust_remote_code)
    try:
        return evaluate_model(model, tok, tasks, **kwargs)
    finally:
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


__all__ = [
    "PAPER_TASKS",
    "evaluate_model",
    "evaluate_path",
    "headline_metric",
    "make_lm",
]
