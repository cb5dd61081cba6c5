"""The vLLM backend of the generate stage (``advantage.sampling.backend: vllm``).

Used only where vLLM is installed (``pip install 'profuser[vllm]'``). Each
request carries its own seed, derived exactly as in the Hugging Face backend,
so an answer does not depend on how vLLM batches requests. The two backends
draw different random streams: answers are reproducible within a backend,
not across backends.
"""

from __future__ import annotations

from collections.abc import Sequence

from profuser.errors import UserError
from profuser.generate.engine import Generation


def generate_vllm(
    model_path: str,
    tok,
    prompts: Sequence[str],
    seeds: Sequence[int],
    *,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> list[Generation]:
    """One sampled answer per prompt through `vllm.LLM.generate`, prompts given as token ids."""
    try:
        from vllm import LLM, SamplingParams
        from vllm.inputs import TokensPrompt
    except ImportError:
        raise UserError(
            "advantage.sampling.backend=vllm needs vLLM; install it with pip install 'profuser[vllm]' "
            "or set advantage.sampling.backend=hf"
        ) from None
    llm = LLM(
        model=model_path,
        dtype="auto" if dtype == "auto" else dtype,
        trust_remote_code=trust_remote_code,
    )
    params = [
        SamplingParams(
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_new_tokens,
            seed=int(seed % (2**31 - 1)),
            stop_token_ids=list(stop_ids),
        )
        for seed in seeds
    ]
    requests = [
        TokensPrompt(prompt_token_ids=tok(p, add_special_tokens=False)["input_ids"])
        for p in prompts
    ]
    outs = llm.generate(requests, params)
    results = []
    for out in outs:
        comp = out.outputs[0]
        results.append(
            Generation(
                text=tok.decode(comp.token_ids, skip_special_tokens=True).strip(),
                num_tokens=len(comp.token_ids),
                hit_limit=comp.finish_reason == "length",
            )
        )
    return results
