"""A transformer body plus a linear value head from a state dict, like Starling-RM-7B-alpha.

Starling-RM-7B-alpha is a Llama-2-7b-chat body (``LlamaModel``) with
``v_head = Linear(hidden, 1, bias=False)``; its reward is the head applied to
the hidden state of the last real token. Its weights come as one state dict.

Here the body is loaded with ``AutoModel.from_pretrained(cfg.path)`` and the
head from ``cfg.value_head_file`` (``.safetensors``, ``.bin`` or ``.pt``; a
path relative to the model directory, or a file name in a hub repository).
The head is the pair of keys ending in ``v_head.weight`` / ``v_head.bias``
(any prefix; the bias is optional). When the same file also holds a full set
of body weights under some prefix (Starling's file stores them as
``transformer.*``), they replace the body's weights, so pointing ``path`` at
the base model and ``value_head_file`` at the RM's state dict reproduces the RM.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModel

from profuser.config import RewardModelConfig
from profuser.errors import UserError
from profuser.reward.hf import TransformerRewardModel, load_error, load_pretrained

DEFAULT_HEAD_FILES = (
    "value_head.safetensors",
    "value_head.bin",
    "value_head.pt",
    "v_head.safetensors",
    "v_head.bin",
    "v_head.pt",
)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a ``torch.save``d state dict, on the CPU."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) files cannot be memory-mapped
        sd = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(sd, dict):
        raise UserError(f"{path}: holds a {type(sd).__name__}, not a state dict")
    return sd.get("state_dict", sd) if isinstance(sd.get("state_dict"), dict) else sd


def head_file(cfg: RewardModelConfig, model_path: str) -> Path:
    """The value-head file: ``cfg.value_head_file`` (as given, or in the model dir / hub repo)."""
    local_dir = Path(model_path)
    if cfg.value_head_file is None:
        found = [local_dir / f for f in DEFAULT_HEAD_FILES if (local_dir / f).is_file()]
        if not found:
            raise UserError(
                f"reward model {cfg.name!r} of kind value_head needs value_head_file "
                "(the state dict holding v_head.weight)"
            )
        return found[0]
    for cand in (Path(cfg.value_head_file).expanduser(), local_dir / cfg.value_head_file):
        if cand.is_file():
            return cand
    if not local_dir.is_dir():  # a hub id: fetch the file from the repository
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(model_path, cfg.value_head_file))
        except Exception as exc:  # offline, no such file, no access
            raise load_error(cfg.name, model_path, f"{cfg.value_head_file!r}", exc) from None
    raise UserError(
        f"reward model {cfg.name!r}: value_head_file {cfg.value_head_file!r} not found "
        f"(looked as given and in {model_path!r})"
    )


def _head_key(sd: dict[str, torch.Tensor], suffix: str) -> str | None:
    keys = [k for k in sd if k == suffix or k.endswith("." + suffix)]
    return min(keys, key=len) if keys else None


def value_head_from(
    sd: dict[str, torch.Tensor], hidden: int, name: str, file: Path
) -> torch.nn.Linear:
    """``Linear(hidden, 1)`` (fp32) from the ``*v_head.weight`` / ``*v_head.bias`` keys of ``sd``."""
    w_key = _head_key(sd, "v_head.weight")
    if w_key is None:
        some = ", ".join(sorted(sd)[:5])
        raise UserError(
            f"reward model {name!r}: {file} has no key ending in 'v_head.weight' "
            f"(it has {len(sd)} keys, e.g. {some})"
        )
    weight = sd[w_key].float().reshape(-1, sd[w_key].shape[-1])  # [outputs, hidden]
    if weight.shape[0] != 1:
        raise UserError(
            f"reward model {name!r}: {w_key} in {file} has {weight.shape[0]} outputs; "
            "a value head needs exactly one"
        )
    if weight.shape[1] != hidden:
        raise UserError(
            f"reward model {name!r}: {w_key} in {file} expects hidden size {weight.shape[1]}, "
            f"the body has {hidden}"
        )
    b_key = _head_key(sd, "v_head.bias")
    head = torch.nn.Linear(hidden, 1, bias=b_key is not None)
    with torch.no_grad():
        head.weight.copy_(weight)
        if b_key is not None:
            head.bias.copy_(sd[b_key].float().reshape(1))
    return head


def body_weights_from(
    sd: dict[str, torch.Tensor], body_keys: list[str], name: str, file: Path
) -> dict[str, torch.Tensor] | None:
    """The body's weights stored in ``sd`` under one prefix, or None when it holds none.

    A prefix that covers only part of the body is a UserError (a truncated or
    mismatched checkpoint should not be scored with half-random weights).
    """
    if not body_keys:
        return None
    anchor = body_keys[0]
    prefixes = {
        k[: len(k) - len(anchor)]
        for k in sd
        if k.endswith(anchor) and (len(k) == len(anchor) or k[len(k) - len(anchor) - 1] == ".")
    }
    best, hits = None, 0
    for prefix in sorted(prefixes):
        count = sum(prefix + k in sd for k in body_keys)
        if count > hits:
            best, hits = prefix, count
    if best is None:
        return None
    if hits < len(body_keys):
        raise UserError(
            f"reward model {name!r}: {file} holds only {hits} of the body's {len(body_keys)} "
            f"weights under prefix {best!r}; it does not match the model at the path"
        )
    return {k: sd[best + k] for k in body_keys}


class ValueHeadRewardModel(TransformerRewardModel):
    """reward = v_head(hidden state of the last real token).

    Args:
        name: the RM's name.
        body: a transformer returning ``last_hidden_state`` ``[b, L, hidden]``.
        head: ``Linear(hidden, 1)``.
        *args, **kwargs: the rest of :class:`~profuser.reward.hf.TransformerRewardModel`'s
            arguments (tokenizer, device, batch_size, max_length).
    """

    pad_in_config = False  # the last real token comes from the mask, not from a pad id

    def __init__(self, name: str, body: torch.nn.Module, head: torch.nn.Linear, *args, **kwargs):
        super().__init__(name, body, *args, **kwargs)
        self.head = head.to(self.device).eval()

    @classmethod
    def load_parts(cls, cfg: RewardModelConfig, path: str, device: torch.device) -> tuple:
        """The body by ``AutoModel`` and the head from its state dict (which may also hold
        the body's weights)."""
        file = head_file(cfg, path)
        body = load_pretrained(AutoModel, cfg.name, path, "the body (AutoModel)", device)
        try:
            sd = read_state_dict(file)
        except UserError:
            raise
        except Exception as exc:  # a corrupt or foreign file
            raise load_error(cfg.name, str(file), "a state dict", exc) from None
        hidden = body.get_input_embeddings().weight.shape[-1]
        head = value_head_from(sd, hidden, cfg.name, file)
        body_sd = body_weights_from(sd, list(body.state_dict()), cfg.name, file)
        if body_sd is not None:
            body.load_state_dict(body_sd)
        return body, head

    @property
    def body(self) -> torch.nn.Module:
        """The transformer body (the base class's ``model``)."""
        return self.model

    def rewards(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[b, L]`` right-padded -> ``[b]``: the head on each row's last real token."""
        out = self.body(input_ids=input_ids, attention_mask=attention_mask)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        last = attention_mask.sum(dim=1) - 1  # [b]
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # [b, hidden]
        return self.head(pooled.float()).squeeze(-1)  # [b]


load_value_head = ValueHeadRewardModel.load
