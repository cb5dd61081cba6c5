"""The tiny world's trained reward model: a small Bradley–Terry RM on right vs wrong answers.

A plain ``AutoModelForSequenceClassification`` with one output: a two-layer
ModernBERT encoder with mean pooling (an encoder RM, like OpenAssistant's
DeBERTa reward models), its own WordPiece tokenizer and chat template, saved
with ``save_pretrained`` and loaded back like any hub RM (``kind: seq_cls``).

Training pairs come from :func:`profuser.world.skills.generate_examples`: the
chosen answer is correct, the rejected one is a plausible wrong answer to the
same instruction (see :func:`wrong_answer`). Each pair is in the short format
(the bare answer) or the long one (the explained GT answer; the rejected side
has the wrong answer substituted throughout), and a quarter of the pairs mix
the two formats so that answer length alone does not decide the score. Loss:
``-log sigmoid(r_chosen - r_rejected)``, averaged over the batch.

Choices that make it learn in well under a minute on a CPU (each measured):

* WordPiece, so a number is the same token in the question, the short answer
  and the explanation (byte-level BPE splits "26" and " 26" apart);
* a chat template without the system turn: the world's system messages say
  nothing about correctness and would triple the length;
* mean pooling, bidirectional attention: learns the same pairs several times
  faster than last-token pooling in a causal (Llama) model;
* batches of similar length, and one CPU thread (a model this small runs
  several times slower when two threads compete with other work).

Seeded: the same arguments give identical weights (the global torch RNG and
thread count are restored afterwards).
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    ModernBertConfig,
    ModernBertForSequenceClassification,
    PreTrainedTokenizerBase,
)

from profuser.models.chat import messages_for
from profuser.world.answers import normalize_answer
from profuser.world.skills import SKILLS, WorldExample, generate_examples, skill_weights
from profuser.world.tokenizers import build_tokenizer

# chatml without the system turn.
RM_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
RM_SPECIALS = ("<|im_start|>", "<|im_end|>")
RM_TOKENIZER = "wordpiece"
RM_VOCAB = 1024
MAX_LENGTH = 1024  # positions (rotary: no weights); training rows are far shorter
HIDDEN = 64
LAYERS = 2
BATCH = 32  # pairs per step
LR = 2e-3
N_TRAIN_EXAMPLES = 4000
MIXED_FORMAT = 0.25  # share of pairs whose two answers are in different formats
DEFAULT_STEPS = 900


@dataclass(frozen=True)
class PreferencePair:
    """One instruction with a correct (chosen) and a wrong (rejected) answer."""

    example: WorldExample
    chosen: str
    rejected: str

    @property
    def prompt(self) -> tuple[str, str]:
        """(system, instruction), as reward models take it."""
        return self.example.system, self.example.instruction


def wrong_answer(ex: WorldExample, same_skill: list[str], rng: random.Random) -> str:
    """A plausible wrong answer to ``ex``, never the correct one: another example's answer
    of the same skill, a number from the question, or (numeric answers) a nearby number."""
    gold = normalize_answer(ex.answer)
    pools: list[list[str]] = [[a for a in same_skill if normalize_answer(a) != gold]]
    pools.append([n for n in re.findall(r"\d+", ex.instruction) if n != gold])
    if ex.answer.isdigit():
        near = [str(int(ex.answer) + d) for d in (-2, -1, 1, 2, 10)]
        pools.append([n for n in near if int(n) >= 0 and n != gold])
    pools = [p for p in pools if p]
    return rng.choice(rng.choice(pools))


def long_form(ex: WorldExample, answer: str) -> str:
    """The explained GT answer with every whole-word occurrence of the correct answer
    replaced by ``answer`` (the GT response itself when ``answer`` is correct)."""
    if answer == ex.answer:
        return ex.response
    pattern = r"(?<!\w)" + re.escape(ex.answer) + r"(?!\w)"
    return re.sub(pattern, lambda _: answer, ex.response)


def make_pairs(examples: list[WorldExample], seed: int) -> list[PreferencePair]:
    """One preference pair per example, formats drawn at random (seeded)."""
    rng = random.Random(f"{seed}-rm-pairs")
    by_skill: dict[str, set[str]] = {}
    for ex in examples:
        by_skill.setdefault(ex.skill, set()).add(ex.answer)
    pairs = []
    for ex in examples:
        wrong = wrong_answer(ex, sorted(by_skill[ex.skill]), rng)
        short = rng.random() < 0.5
        mixed = rng.random() < MIXED_FORMAT
        chosen = ex.short if short else long_form(ex, ex.answer)
        rejected = wrong if short != mixed else long_form(ex, wrong)
        pairs.append(PreferencePair(ex, chosen, rejected))
    return pairs


def heldout_pairs(n: int, seed: int) -> list[PreferencePair]:
    """``n`` pairs of ``dev`` questions, which the RM never trains on."""
    return make_pairs(generate_examples(n, seed, "rm-heldout", partition="dev"), seed + 1)


def _encode(tok: PreTrainedTokenizerBase, ex: WorldExample, answer: str) -> list[int]:
    text = tok.apply_chat_template(messages_for(ex.system, ex.instruction, answer), tokenize=False)
    return list(tok(text, add_special_tokens=False)["input_ids"])


def _model(tok: PreTrainedTokenizerBase) -> ModernBertForSequenceClassification:
    cfg = ModernBertConfig(
        vocab_size=len(tok),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH,
        layer_types=["full_attention"] * LAYERS,
        classifier_pooling="mean",
        num_labels=1,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        cls_token_id=tok.bos_token_id,
        sep_token_id=tok.eos_token_id,
    )
    return ModernBertForSequenceClassification(cfg)


def train_world_reward_model(
    out_dir: Path,
    tokenizer_texts: list[str],
    seed: int,
    steps: int = DEFAULT_STEPS,
    skills: tuple[str, ...] = SKILLS,
) -> Path:
    """Train the tiny world's reward model and save it (model + tokenizer) to ``out_dir``.

    Args:
        out_dir: where ``save_pretrained`` writes; created if missing.
        tokenizer_texts: text the RM's WordPiece tokenizer is trained on (the
            world's instructions and answers).
        seed: seeds the training pairs, the initial weights and the batch order.
        steps: optimizer steps of ``BATCH`` pairs each (900: 42-48 s on one core here).
        skills: the skills its pairs are drawn from (the world's).

    Returns:
        ``out_dir``, loadable with ``AutoModelForSequenceClassification`` or
        ``load_reward_model(RewardModelConfig(name=..., kind="seq_cls", path=...))``.
        ``training_log.json`` beside the weights records the loss curve and time.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    texts = [*tokenizer_texts, "user assistant"]  # the template's own words
    tok = build_tokenizer(RM_TOKENIZER, texts, RM_VOCAB, RM_SPECIALS, RM_CHAT_TEMPLATE)
    tok.model_max_length = MAX_LENGTH
    examples = generate_examples(N_TRAIN_EXAMPLES, seed, "rm-train", skill_weights(skills))
    pairs = make_pairs(examples, seed)
    rows = [(_encode(tok, p.example, p.chosen), _encode(tok, p.example, p.rejected)) for p in pairs]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _model(tok)
            losses = _fit(model, rows, tok.pad_token_id, steps, seed)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    seconds = time.perf_counter() - start
    log = {"seed": seed, "steps": steps, "seconds": round(seconds, 2), "losses": losses}
    (out_dir / "training_log.json").write_text(json.dumps(log))
    return out_dir


def _length_batches(
    rows: list[tuple[list[int], list[int]]], gen: torch.Generator
) -> list[list[int]]:
    """One epoch of batches of ``BATCH`` pairs of similar length, in random order.

    Rows are sorted by length with random tie-breaking, cut into batches, and the
    batches shuffled: short pairs are then padded to short widths (about half
    the compute of random batches here).
    """
    jitter = torch.rand(len(rows), generator=gen).tolist()
    order = sorted(range(len(rows)), key=lambda i: (max(map(len, rows[i])), jitter[i]))
    batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


def _fit(
    model: torch.nn.Module,
    rows: list[tuple[list[int], list[int]]],
    pad_id: int,
    steps: int,
    seed: int,
) -> list[float]:
    """Bradley–Terry training (AdamW, warmup + cosine); returns the loss per step."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)),
    )
    model.train()
    losses: list[float] = []
    batches: list[list[int]] = []
    for _ in range(steps):
        if not batches:
            batches = _length_batches(rows, gen)
        idx = batches.pop()
        seqs = [rows[i][0] for i in idx] + [rows[i][1] for i in idx]  # chosen, then rejected
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # [2B, L]
        att = torch.zeros((len(seqs), width), dtype=torch.long)  # [2B, L]
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s)
            att[r, : len(s)] = 1
        reward = model(input_ids=ids, attention_mask=att).logits[:, 0]  # [2B]
        margin = reward[: len(idx)] - reward[len(idx) :]  # [B]
        loss = -torch.nn.functional.logsigmoid(margin).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 5))
    return losses
