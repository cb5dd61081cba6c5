"""Typed run configuration, loaded from YAML with ``key=value`` overrides on dotted paths.

Defaults are the paper's appendix A: compact distributions at temperature 2,
top-k 10, top-p 0.95; Adam at lr 1.5e-5 with a cosine schedule, effective batch
128, max length 2048; the ProFuser schedule (1 epoch inference mode, then 2
epochs of both modes).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from profuser.config_overrides import apply_override, parse_override
from profuser.configs import config_path
from profuser.curate.options import SelectOptions
from profuser.errors import ConfigError
from profuser.paths import PATH_SCHEMES
from profuser.train.schedules import SCHEDULES, Phase, check_preference_last


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Dtype = Literal["auto", "float32", "bfloat16", "float16"]


class SourceConfig(_Strict):
    """One source model: a Hugging Face causal LM from a directory or hub id."""

    name: str
    path: str
    chat_template: str | None = (
        None  # a name from profuser.models.chat_templates, used if the tokenizer has none
    )
    dtype: Dtype = "auto"  # auto: bf16 on GPU, fp32 on CPU
    trust_remote_code: bool = False


class RewardModelConfig(_Strict):
    """One reward model (or programmatic scorer) that votes in inference mode."""

    name: str
    kind: str = "seq_cls"  # a registered kind (plugins add theirs): see profuser.config_checks
    path: str | None = None
    chat_template: str | None = None
    value_head_file: str | None = None  # for kind=value_head: state dict of the head
    strongest: bool = False  # the tie-breaker of the vote

    @model_validator(mode="after")
    def _needs_path(self) -> RewardModelConfig:
        if self.kind in ("seq_cls", "custom_code", "value_head") and not self.path:
            raise ValueError(f"reward model {self.name!r} of kind {self.kind} needs a path")
        return self


COLUMN_PRESETS: dict[str, dict[str, str]] = {
    "openorca": {"system": "system_prompt", "instruction": "question", "response": "response"},
    "alpaca": {"instruction": "instruction", "input": "input", "response": "output"},
    "sharegpt": {"conversations": "conversations"},
    "messages": {"messages": "messages"},
}


class DatasetConfig(_Strict):
    """The instruction set: a local json/jsonl/parquet/arrow file or a hub id."""

    path: str
    split: str = "train"
    preset: Literal["openorca", "alpaca", "sharegpt", "messages", "fields"] = "openorca"
    fields: dict[str, str] | None = None  # for preset=fields: our name -> column name
    id_field: str | None = None  # a column holding unique ids; else row numbers
    limit: int | None = Field(default=None, gt=0)
    seed: int = 0

    @model_validator(mode="after")
    def _fields_for_preset(self) -> DatasetConfig:
        if self.preset == "fields":
            need = {"instruction", "response"}
            if not self.fields or not need <= set(self.fields):
                raise ValueError("preset 'fields' needs fields with at least instruction, response")
        return self

    def columns(self) -> dict[str, str]:
        """Our field name -> the dataset's column name."""
        return dict(self.fields) if self.preset == "fields" else dict(COLUMN_PRESETS[self.preset])


class SamplingConfig(_Strict):
    """Inference mode: how each source samples its one answer."""

    temperature: float = Field(default=0.7, ge=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_new_tokens: int = Field(default=1024, gt=0)
    batch_size: int = Field(default=16, gt=0)  # rows decoded together (refilled as rows end)
    # Prefill a prefix shared by several prompts (chat header, system message) once; used only
    # for models where it gives the plain logits (checked once per model; not ALiBi models).
    share_prefixes: bool = True
    backend: Literal["hf", "vllm"] = "hf"
    # Answers per source and prompt: the first is inference mode's (voted on by the score
    # stage); the rest only feed the preference pairs (the `pairs` stage's intra_source rule).
    n: int = Field(default=1, ge=1)


class AdvantageConfig(_Strict):
    """Advantage evaluation in both modes and the compact distributions (appendix A)."""

    temperature: float = Field(default=2.0, gt=0.0)
    top_k: int = Field(default=10, gt=0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    training_rule: str = "min_ce"
    inference_rule: str = "rm_vote"
    unaligned: Literal["onehot_gt", "skip"] = "onehot_gt"
    logprob_format: Literal["fp16", "q8"] = "fp16"
    batch_tokens: int = Field(default=16384, gt=0)  # tokens per teacher-forcing batch
    shard_size: int = Field(default=1000, gt=0)  # examples per stored shard
    sampling: SamplingConfig = SamplingConfig()
    # Preference pairs: the least score gap (strongest RM) between chosen and rejected answer.
    pair_margin: float = Field(default=0.0, ge=0.0)


class LoraOptions(_Strict):
    """``train.lora``: low-rank adapters through ``peft``, base weights frozen; each variant saves
    ``final/adapter`` and the merged model in ``final``, which evaluation loads as any other."""

    rank: int = Field(default=16, gt=0)
    alpha: float = Field(default=32.0, gt=0.0)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    # module names (q_proj, v_proj), or every linear layer but the output head
    target_modules: Annotated[list[str], Field(min_length=1)] | Literal["all-linear"] = "all-linear"


class TrainConfig(_Strict):
    """Training arguments (appendix A)."""

    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = Field(default=1.5e-5, gt=0.0)
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    effective_batch: int = Field(default=128, gt=0)
    micro_batch: int = Field(default=4, gt=0)
    max_length: int = Field(default=2048, gt=0)
    checkpoint_every: int = Field(default=500, gt=0)  # optimizer steps
    max_grad_norm: float = Field(default=1.0, ge=0.0)
    gradient_checkpointing: bool = False
    dtype: Dtype = "auto"
    # Attention by its reproducible (math) kernel, so a seed gives the same weights; costs the
    # attention matrix's memory, as eager attention does (profuser.train.determinism).
    deterministic: bool = False
    # Every phase's epochs of every schedule times this: the paper's appendix-A schedule sees
    # 100k rows; a small fusion set needs more passes for the same learning (README, results).
    epoch_scale: float = Field(default=1.0, gt=0.0)
    # Low-rank adapters instead of full fine-tuning (every schedule); None trains all weights.
    lora: LoraOptions | None = None
    # A preference phase's learning rate where the phase names none (None: `lr`); preference
    # optimisation usually wants a smaller one than fine-tuning.
    preference_lr: float | None = Field(default=None, gt=0.0)


class EvalConfig(_Strict):
    """Benchmarks run by the eval stage."""

    tasks: list[str] = Field(default_factory=list)
    limit: int | None = Field(default=None, gt=0)
    batch_size: int = Field(default=8, gt=0)
    # lm-eval joins a template's trailing space/newline to a multiple-choice answer before
    # tokenizing; True tokenizes the answer alone, as the model generates it after its prompt.
    split_continuation: bool = False
    # Greedy generation tasks decode with profuser's own batched loop (`profuser.generate`:
    # rows leave the batch as they end, shared prefixes prefill once) or with Hugging Face
    # `generate`, lm-eval's own path. Both give the same tokens; sampled requests always
    # take `generate`.
    generation: Literal["profuser", "hf"] = "profuser"
    # Reuse a model's record when the same files were evaluated the same way before
    # (`profuser.evaluate.cache`; the studies of a demo all evaluate the same sources).
    cache: bool = True
    # lm-eval's random state (few-shot draws, sampled generation). Fixed rather than the run's
    # training seed: a model is scored the same way in every run, so runs of different
    # training seeds are compared on the same draws and a source is evaluated once for all.
    seed: int = 0


class MergeConfig(_Strict):
    """A weight-merging baseline (paper, Table 3): a trained variant merged with a same-architecture source."""

    method: Literal["slerp", "ties", "dare"]
    name: str | None = None  # default: the method
    variant: str = "csft"
    source: str  # a source of the target's architecture
    base: str | None = None  # common ancestor for TIES/DARE (e.g. Llama-2-7b); default: the variant
    params: dict[str, Any] = Field(default_factory=dict)


class RunConfig(_Strict):
    """A whole fusion run."""

    name: str = "profuser"
    seed: int = 42
    output_dir: str = "runs/profuser"
    sources: list[SourceConfig]
    target: str  # name of the source that is also the target
    target_path: str | None = None  # a separate target model (then `target` names it)
    reward_models: list[RewardModelConfig] = Field(default_factory=list)
    dataset: DatasetConfig
    select: SelectOptions = SelectOptions()  # the fusion set from the pool (curate.options)
    advantage: AdvantageConfig = AdvantageConfig()
    schedule: str | list[Phase] = "profuser"
    variants: list[str] = Field(default_factory=list)  # extra schedule presets to train (baselines)
    train: TrainConfig = TrainConfig()
    merges: list[MergeConfig] = Field(default_factory=list)
    eval: EvalConfig = EvalConfig()
    # options of registered path schemes, by scheme (written in YAML as a top-level section
    # of the scheme's name, e.g. `world: {seed: 0}`; see profuser.paths)
    path_options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _scheme_sections(cls, tree: Any) -> Any:
        """Move each registered path scheme's section (``world: {...}``) under path_options
        and check its options, so a bad one is named before any work starts."""
        if not isinstance(tree, dict):
            return tree
        tree = dict(tree)
        options = dict(tree.get("path_options") or {})
        for name in PATH_SCHEMES:
            if name in tree:
                options[name] = tree.pop(name) or {}
        for name, opts in options.items():
            scheme = PATH_SCHEMES.get(name)
            if scheme is None:
                raise ValueError(
                    f"`path_options.{name}`: no path scheme {name!r} is registered "
                    f"(registered: {', '.join(sorted(PATH_SCHEMES)) or 'none'})"
                )
            if not isinstance(opts, dict):
                raise ValueError(f"`{name}` must be a mapping of options, got {opts!r}")
            try:
                scheme.check(opts)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        if options:
            tree["path_options"] = options
        return tree

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, v: str | list[Phase]) -> str | list[Phase]:
        if isinstance(v, str) and v not in SCHEDULES:
            raise ValueError(
                f"unknown schedule {v!r}; choose one of {', '.join(sorted(SCHEDULES))}"
            )
        if isinstance(v, list):
            check_preference_last(v)
        return v

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in SCHEDULES:
                raise ValueError(
                    f"unknown variant {name!r}; choose from {', '.join(sorted(SCHEDULES))}"
                )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique, got {names}")
        if not self.target_path and self.target not in names:
            raise ValueError(f"target {self.target!r} is not a source; sources are {names}")
        for m in self.merges:
            if m.source not in names:
                raise ValueError(
                    f"merge {m.name or m.method!r}: source {m.source!r} is not a source"
                )
            if m.variant not in self.variants and m.variant != self.schedule:
                raise ValueError(
                    f"merge {m.name or m.method!r}: variant {m.variant!r} is not trained (add it to variants)"
                )
        strongest = [r.name for r in self.reward_models if r.strongest]
        if len(strongest) > 1:
            raise ValueError(f"only one reward model may be strongest, got {strongest}")
        return self

    def fingerprint(self, *paths: str) -> str:
        """A short hash of the config sections at ``paths`` (dotted), for stage manifests."""
        dump = self.model_dump(mode="json")
        part = {p: _get_dotted(dump, p) for p in paths}
        blob = json.dumps(part, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _get_dotted(tree: Any, path: str) -> Any:
    for key in path.split("."):
        tree = tree[int(key)] if isinstance(tree, list) else tree[key]
    return tree


def _valid_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(_valid_paths(ann, path + "."))
        for arg in getattr(ann, "__args__", ()):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out.extend(_valid_paths(arg, path + ".N."))
    return out


def _closest(path: str) -> str:
    generic = ".".join("N" if part.isdigit() else part for part in path.split("."))
    cands = _valid_paths(RunConfig) + _valid_paths(Phase, "schedule.N.")
    match = difflib.get_close_matches(generic, cands, n=1, cutoff=0.5)
    if not match:
        leaf = generic.rsplit(".", 1)[-1]
        leaves = {c.rsplit(".", 1)[-1]: c for c in cands}
        near = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.6)
        match = [leaves[near[0]]] if near else []
    return f" (did you mean `{match[0]}`?)" if match else ""


def _format_error(err: ValidationError, origin: str) -> str:
    # In a union (schedule: name or phases) pydantic reports every branch: show the deepest.
    first = max(err.errors(), key=lambda e: (e["type"] == "extra_forbidden", len(e["loc"])))
    # pydantic names the union's branches (`str`, `list[...Phase]`) in the location: drop them
    parts = [str(p) for p in first["loc"]]
    loc = ".".join(p for p in parts if not p.startswith(("function-", "list[")) and p != "str")
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown key `{loc}`{_closest(loc)}"
    if first["type"] == "missing":
        return f"{origin}: missing required key `{loc}`"
    msg = first["msg"].removeprefix("Value error, ")
    where = f"`{loc}`: " if loc else ""
    more = f" (and {len(err.errors()) - 1} more problem(s))" if len(err.errors()) > 1 else ""
    return f"{origin}: {where}{msg}{more}"


def load_config(
    path: str | Path | None = None, overrides: list[str] = (), base: dict | None = None
) -> RunConfig:
    """Load a run config (YAML file, packaged name or ``base``) with ``key=value`` overrides."""
    origin = str(path) if path else "config"
    if path is not None:
        p = config_path(path)
        try:
            tree = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            where = f" line {line + 1}" if line is not None else ""
            raise ConfigError(f"{p}:{where} is not valid YAML; fix the syntax") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of keys")
    else:
        tree = json.loads(json.dumps(base or {}))
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(tree, keys, value)
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_error(err, origin)) from None
