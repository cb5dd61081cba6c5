"""Chat formatting: each model sees an example in its own chat template.

An assistant turn is split into three pieces of text: the prompt (everything the
template renders before the answer, as the generation prompt), the answer text
itself and the template's end-of-turn suffix. The answer is encoded on its own
(without special tokens), so that the same answer string gives comparable tokens
under every tokenizer and the aligner can map them by character offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from profuser.errors import UserError


@dataclass(frozen=True)
class EncodedTurn:
    """Token ids of one (prompt, answer) pair under one tokenizer."""

    prompt_ids: list[int]
    answer_ids: list[int]  # the answer text alone
    suffix_ids: list[int]  # end of turn (eos etc.), trained on but not distilled

    @property
    def input_ids(self) -> list[int]:
        return self.prompt_ids + self.answer_ids + self.suffix_ids


def messages_for(system: str | None, instruction: str, answer: str | None = None) -> list[dict]:
    """OpenAI-style messages for one example (system message only when non-empty)."""
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": instruction})
    if answer is not None:
        msgs.append({"role": "assistant", "content": answer})
    return msgs


def split_turn(
    tok: PreTrainedTokenizerBase, system: str | None, instruction: str, answer: str
) -> tuple[str, str]:
    """(prompt text, suffix text) around ``answer`` in ``tok``'s chat template."""
    msgs = messages_for(system, instruction)
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(
        msgs + [{"role": "assistant", "content": answer}], tokenize=False
    )
    if not full.startswith(prompt):
        # Templates that render the generation prompt differently from a finished turn:
        # fall back to the longest common prefix.
        n = 0
        while n < min(len(full), len(prompt)) and full[n] == prompt[n]:
            n += 1
        prompt = full[:n]
    rest = full[len(prompt) :]
    at = rest.find(answer)
    if at < 0:
        raise UserError(
            f"chat template of {tok.name_or_path!r} does not reproduce the answer text; "
            "set the source's chat_template to a named template"
        )
    return prompt + rest[:at], rest[at + len(answer) :]


def render_prompt(tok: PreTrainedTokenizerBase, system: str | None, instruction: str) -> str:
    """The generation prompt for one instruction, in ``tok``'s own chat template."""
    return tok.apply_chat_template(
        messages_for(system, instruction), tokenize=False, add_generation_prompt=True
    )


def encode_turn(
    tok: PreTrainedTokenizerBase, system: str | None, instruction: str, answer: str
) -> EncodedTurn:
    """Encode prompt, answer and suffix separately (no special tokens added)."""
    prompt, suffix = split_turn(tok, system, instruction, answer)

    def enc(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"] if text else []

    return EncodedTurn(enc(prompt), enc(answer), enc(suffix))


def end_of_turn_ids(tok: PreTrainedTokenizerBase) -> list[int]:
    """Token ids that end an assistant turn: eos, plus the template's own end marker
    (e.g. chatml's ``<|im_end|>``) when it is a special token."""
    ids = [tok.eos_token_id] if tok.eos_token_id is not None else []
    _, suffix = split_turn(tok, None, "x", "y")
    first = tok(suffix.strip(), add_special_tokens=False)["input_ids"][:1] if suffix.strip() else []
    specials = set(tok.all_special_ids) | set(getattr(tok, "added_tokens_decoder", {}) or {})
    ids += [i for i in first if i in specials]
    return sorted(set(ids))
