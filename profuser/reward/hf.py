"""Shared machinery of the reward models that are neural networks.

Loading: a local directory or hub id, the tokenizer with a chat template (its
own, else the one named in the config), a pad token, the dtype (bf16 on a GPU,
fp32 on the CPU).

Scoring: each (system, instruction, answer) is rendered as a finished chat in
the RM's own template, tokenised (truncated to the model's maximum length),
sorted by length, right-padded into batches and run under
``torch.inference_mode``. A batch whose forward raises is retried row by row,
so only the rows that really fail score NaN.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jinja2 import TemplateError
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from profuser.config import RewardModelConfig
from profuser.errors import UserError
from profuser.models.chat import messages_for
from profuser.models.chat_templates import get_chat_template
from profuser.reward.base import BaseRewardModel, Rows

log = logging.getLogger(__name__)

_UNBOUNDED = 1_000_000  # tokenizers without a real limit report ~1e30 as model_max_length


def default_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device; None picks the GPU when there is one."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on a GPU (how the paper's 7B RMs are run), fp32 on the CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def check_model_path(path: str | None, name: str) -> str:
    """``path`` itself; a UserError when it names a local directory that does not exist."""
    if not path:
        raise UserError(f"reward model {name!r} needs a path (a model directory or hub id)")
    p = Path(path).expanduser()
    looks_local = path.startswith((".", "/", "~")) or p.exists() or path.count("/") > 1
    if looks_local and not p.is_dir():
        raise UserError(f"reward model {name!r}: directory {path!r} not found; check its path")
    return str(p) if looks_local else path


def load_error(name: str, path: str, what: str, exc: Exception) -> UserError:
    """A one-line UserError for a model or tokenizer that ``from_pretrained`` rejected."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(f"reward model {name!r}: cannot load {what} from {path!r}: {first}")


def load_rm_tokenizer(
    name: str, path: str, chat_template: str | None, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    """The RM's tokenizer with a chat template: its own, else the named one; and a pad token.

    A missing pad token becomes the unk token, else eos (what RewardBench does).
    """
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise load_error(name, path, "a tokenizer", exc) from None
    if not getattr(tok, "chat_template", None):
        if chat_template is None:
            raise UserError(
                f"reward model {name!r}: tokenizer {path!r} has no chat template; set "
                "chat_template for it in the config (e.g. llama-2, chatml, vicuna_v1.1, alpaca)"
            )
        try:
            tok.chat_template = get_chat_template(chat_template)
        except ValueError as exc:
            raise UserError(f"reward model {name!r}: {exc}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.unk_token if tok.unk_token is not None else tok.eos_token
    return tok


def model_max_length(tok: PreTrainedTokenizerBase, config: Any, override: int | None) -> int:
    """Tokens kept per row: the smallest of ``override``, the tokenizer's and the model's limits."""
    limits = [override, getattr(tok, "model_max_length", None)]
    for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        limits.append(getattr(config, key, None))
    usable = [int(x) for x in limits if isinstance(x, int | float) and 0 < x < _UNBOUNDED]
    return min(usable) if usable else 4096


def load_pretrained(
    auto_class: Any, cfg_name: str, path: str, what: str, device: torch.device, **kwargs: Any
) -> torch.nn.Module:
    """``auto_class.from_pretrained(path)`` in the device's dtype; a one-line UserError on failure."""
    try:
        return auto_class.from_pretrained(path, dtype=default_dtype(device), **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise load_error(cfg_name, path, what, exc) from None


class TransformerRewardModel(BaseRewardModel):
    """Base of the seq_cls, custom_code and value_head adapters.

    Subclasses implement :meth:`rewards`: right-padded ``input_ids`` and
    ``attention_mask`` ``[b, L]`` to one reward per row ``[b]``.

    Args:
        name: the RM's name in the config.
        model: the loaded network (moved to ``device``, in eval mode).
        tokenizer: its tokenizer, with a chat template and a pad token.
        device: where the model runs.
        batch_size: rows per forward pass.
        max_length: tokens kept per row (after the chat template), right-truncated
            by default (the tokenizer's ``truncation_side`` decides); None = the
            smallest of the model's and the tokenizer's limits.
    """

    failure_note = "failed"
    pad_in_config = True  # write a missing pad id into the model's config, and pad with it
    trust_remote_code = False  # whether loading runs the model directory's own code

    def __init__(
        self,
        name: str,
        model: torch.nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        device: torch.device,
        batch_size: int = 8,
        max_length: int | None = None,
    ):
        super().__init__(name, batch_size)
        config = getattr(model, "config", None)
        self.tokenizer = tokenizer
        self.device = device
        self.max_length = model_max_length(tokenizer, config, max_length)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        if self.pad_in_config and config is not None:
            self.pad_id = config_pad_id(config, tokenizer.pad_token_id, self.pad_id)
        self.model = model.to(device).eval()

    @classmethod
    def load(
        cls,
        cfg: RewardModelConfig,
        device: torch.device,
        batch_size: int = 8,
        max_length: int | None = None,
    ) -> TransformerRewardModel:
        """The RM ``cfg`` describes: its tokenizer (:func:`load_rm_tokenizer`; checked first,
        it is quick) and its network(s) (:meth:`load_parts`), from a local directory or hub
        id ``cfg.path``."""
        path = check_model_path(cfg.path, cfg.name)
        tok = load_rm_tokenizer(cfg.name, path, cfg.chat_template, cls.trust_remote_code)
        parts = cls.load_parts(cfg, path, device)
        return cls(cfg.name, *parts, tok, device, batch_size, max_length)

    @classmethod
    def load_parts(cls, cfg: RewardModelConfig, path: str, device: torch.device) -> tuple:
        """The networks the constructor takes before the tokenizer, loaded from ``path``."""
        raise NotImplementedError

    def rewards(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[b, L]`` right-padded ids and mask -> ``[b]`` rewards."""
        raise NotImplementedError

    def render(self, system: str | None, instruction: str, answer: str) -> str:
        """The finished chat in the RM's template.

        Templates that reject a system turn (Mistral's, for one) get the system
        message folded into the user turn instead.
        """
        tok = self.tokenizer
        try:
            return tok.apply_chat_template(
                messages_for(system, instruction, answer), tokenize=False
            )
        except TemplateError:
            if not system:
                raise
            folded = f"{system}\n\n{instruction}"
            return tok.apply_chat_template(messages_for(None, folded, answer), tokenize=False)

    def encode(self, text: str) -> list[int]:
        """Token ids of one rendered chat; bos is added only when the template has none."""
        bos = self.tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))
        enc = self.tokenizer(
            text, add_special_tokens=add_special, truncation=True, max_length=self.max_length
        )
        return list(enc["input_ids"])

    def _batch(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad token lists into ``input_ids`` and ``attention_mask`` ``[b, L]``."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _run(self, rows: list[list[int]]) -> np.ndarray:
        """Rewards ``[b]`` of one batch (float64); raises what the model raises."""
        ids, mask = self._batch(rows)
        out = self.rewards(ids, mask)
        return out.detach().float().cpu().numpy().astype(np.float64).reshape(len(rows))

    @torch.inference_mode()
    def score_rows(self, rows: Rows) -> np.ndarray:
        """Scores ``[N]`` of each answer to its prompt; the references are not used."""
        scores = np.full(len(rows.prompts), np.nan)
        errors = rows.errors
        encoded: dict[int, list[int]] = {}
        pairs = zip(rows.prompts, rows.answers, strict=True)
        for i, ((system, instruction), answer) in enumerate(pairs):
            if answer is None:
                continue
            try:
                ids = self.encode(self.render(system, instruction, answer))
            except UserError:
                raise
            except Exception as exc:  # one bad row must not stop the run
                log.debug("reward model %r: row %d does not render: %s", self.name, i, exc)
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if ids:
                encoded[i] = ids
        order = sorted(encoded, key=lambda i: -len(encoded[i]))  # similar lengths share a batch
        self.score_batches(order, lambda idx: self._run([encoded[i] for i in idx]), scores, errors)
        return scores


def config_pad_id(config: Any, tokenizer_pad: int | None, default: int) -> int:
    """The pad id the model pools with: its (text) config's; a missing one is set to the
    tokenizer's, as RewardBench does, so that batches larger than one work."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    if getattr(text_config, "pad_token_id", None) is None:
        text_config.pad_token_id = tokenizer_pad
        config.pad_token_id = tokenizer_pad
    pad = getattr(text_config, "pad_token_id", None)
    return default if pad is None else pad


def reward_tensor(out: Any, batch: int, name: str) -> torch.Tensor:
    """One reward per row ``[batch]`` from what a model's forward returned.

    Accepts a tensor ``[batch]`` or ``[batch, 1]``, a tuple/list whose first item
    is one, or an output object with ``.rewards``, ``.logits`` or ``.scores``.
    A tensor with several outputs per row is a UserError (not a reward model).
    """
    if not isinstance(out, torch.Tensor):
        for key in ("rewards", "logits", "scores", "reward", "score"):
            value = out.get(key) if isinstance(out, dict) else getattr(out, key, None)
            if isinstance(value, torch.Tensor):
                out = value
                break
        else:
            if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
                out = out[0]
            else:
                raise UserError(
                    f"reward model {name!r}: forward returned {type(out).__name__}, "
                    "not a reward tensor or an output with .rewards/.logits"
                )
    if out.dim() == 0 and batch == 1:
        out = out.reshape(1)
    if out.dim() == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.dim() != 1 or out.shape[0] != batch:
        raise UserError(
            f"reward model {name!r}: expected one reward per row ([{batch}] or [{batch}, 1]), "
            f"got shape {list(out.shape)}; a reward model must have exactly one output"
        )
    return out
