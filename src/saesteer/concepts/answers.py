"""Concept steering (the AxBench protocol the paper's Table 1 uses): concepts, prompts,
and steered answers to instructions for three methods sharing one sampler.

- `sae`: the feature's SAE direction over the factor grid (the method's steering hook);
- `diffmean`: the DiffMean direction of the concept, same hook, same grid;
- `prompting`: no steering, the concept stated in the prompt.

Two prompt protocols (`PROTOCOLS`): `paper`, the released Concept500 answers' form (the
raw instruction as a text prefix, the answer stopping at the first "."), and `chat` (the
instruction as a chat turn, a full answer up to the end of the turn).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl
import torch

from saesteer.concepts import CONCEPT_GENERATIONS_SCHEMA
from saesteer.errors import ConfigError, ModelError
from saesteer.generation import SteeredRows, continuation_text, sample_answers
from saesteer.prompts import encode_prompt
from saesteer.sampling import SamplingSettings
from saesteer.seeds import row_seed
from saesteer.steering import SteeringTarget

METHODS = ("sae", "diffmean", "prompting")
PROTOCOLS = ("paper", "chat")
PROMPTING_TEMPLATE = "{instruction}\n\nIn your answer, make sure to talk about {concept}."


def protocol_sampling(protocol: str, settings: SamplingSettings) -> SamplingSettings:
    """`paper` answers stop at the first "." as the paper's generate call did; `chat`
    answers run to the end of the turn."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"concepts.protocol: {protocol!r} is not one of {PROTOCOLS}")
    return replace(settings, stop="." if protocol == "paper" else None)


def prompt_ids(tokenizer, text: str, protocol: str) -> list[int]:
    """`paper`: the text itself led by BOS; `chat`: the text as one user turn."""
    return encode_prompt(tokenizer, text) if protocol == "paper" else chat_ids(tokenizer, text)


def judged_text(protocol: str, instruction: str, response: str) -> str:
    """What the judge rates: under `paper` the instruction followed by the continuation,
    as the released answers (and so the paper's judge) have it; under `chat` the answer.
    The prompting baseline's concept sentence is left out, so that the judge never reads
    the concept's name from the prompt."""
    return instruction + response if protocol == "paper" else response.strip()


def chat_ids(tokenizer, text: str) -> list[int]:
    """Token ids of `text` as one user turn, ready for the assistant's answer."""
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(
            "concepts: the model's tokenizer has no chat template; concept steering needs "
            "an instruction-tuned model"
        )
    messages = [{"role": "user", "content": text}]
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(rendered, add_special_tokens=False)["input_ids"]


@dataclass(frozen=True)
class Job:
    method: str
    feature: int
    factor: float
    instruction_id: int
    prompt: str  # the user turn


def concept_jobs(
    concepts: pl.DataFrame,
    instructions: dict[int, list[str]],
    factors: list[float],
    n_select: int,
) -> list[Job]:
    """Steered methods answer every instruction at every factor; prompting needs no factor
    to choose, so it answers the test instructions only."""
    jobs = []
    for feature, concept in concepts.select("feature", "concept").iter_rows():
        texts = instructions[feature]
        for method in METHODS:
            if method == "prompting":
                jobs += [
                    Job(
                        method,
                        feature,
                        0.0,
                        i,
                        PROMPTING_TEMPLATE.format(instruction=t, concept=concept),
                    )
                    for i, t in enumerate(texts)
                    if i >= n_select
                ]
            else:
                jobs += [
                    Job(method, feature, float(c), i, t)
                    for c in factors
                    for i, t in enumerate(texts)
                ]
    return jobs


def end_of_turn_ids(model, tokenizer) -> list[int]:
    """Tokens that end an answer: the tokenizer's EOS, the model's generation EOS ids (e.g.
    Gemma's <end_of_turn> next to <eos>), and known end-of-turn marks in the vocabulary."""
    ids = []
    config = getattr(model, "generation_config", None)
    for eos in (tokenizer.eos_token_id, getattr(config, "eos_token_id", None)):
        ids += [eos] if isinstance(eos, int) else list(eos or [])
    vocab = tokenizer.get_vocab()
    ids += [vocab[t] for t in END_OF_TURN if t in vocab]
    return sorted(set(ids))


END_OF_TURN = ("<end_of_turn>", "<|eot_id|>", "<|im_end|>", "<|end|>")


def generate_concepts(
    target: SteeringTarget,
    concepts: pl.DataFrame,
    instructions: dict[int, list[str]],
    factors: list[float],
    directions: dict[str, dict[int, torch.Tensor]],
    n_select: int,
    settings: SamplingSettings,
    chunk_rows: int | None = None,
    protocol: str = "paper",
) -> pl.DataFrame:
    """One sampled answer per job of `concept_jobs`; `directions[method][feature]` is the
    steering direction (a method misses the concepts it has none for). Answers end at an
    end-of-turn or end-of-text token, after max_new_tokens, and under the `paper` protocol
    at the first token holding ".".

    Jobs run in chunks of `chunk_rows` (16 batches by default), so the KV cache of the
    distinct prompts held at once stays small however many concepts there are; each row's
    own random stream makes the answers the same for any chunking."""
    jobs = [
        j
        for j in concept_jobs(concepts, instructions, factors, n_select)
        if j.method == "prompting" or j.feature in directions.get(j.method, {})
    ]
    model, tokenizer, layer = target.model, target.tokenizer, target.layer
    d_model = target.sae.cfg.d_in
    zero = torch.zeros(d_model)
    rows = (
        torch.stack(
            [
                directions[j.method][j.feature].float().cpu() if j.method in directions else zero
                for j in jobs
            ]
        )
        if jobs
        else torch.zeros(0, d_model)
    )
    settings = protocol_sampling(protocol, settings)
    prompts = {p: prompt_ids(tokenizer, p, protocol) for p in dict.fromkeys(j.prompt for j in jobs)}
    seeds = [row_seed(settings.seed, j.method, j.feature, j.factor, j.instruction_id) for j in jobs]
    steered = SteeredRows(
        [prompts[j.prompt] for j in jobs], rows, torch.tensor([j.factor for j in jobs]), seeds
    )
    answers = sample_answers(
        target,
        steered,
        settings,
        end_ids=end_of_turn_ids(model, tokenizer),
        # Strong steering runs answers to max_new_tokens while weak steering and prompting
        # stop early, so rows are sampled strongest factor first: a batch's rows then stop
        # at about the same step and the batch stays full, instead of a few long rows
        # running alone.
        order=sorted(range(len(jobs)), key=lambda i: -jobs[i].factor),
        # The KV cache of the distinct prompts held at once stays small.
        chunk_rows=chunk_rows or 16 * settings.batch_size,
    )
    responses = [
        continuation_text(tokenizer, prompts[j.prompt], a)
        if protocol == "paper"
        # a chat answer's leading and trailing blanks are the template's, not the model's
        else tokenizer.decode(a, skip_special_tokens=True).strip()
        for j, a in zip(jobs, answers, strict=True)
    ]
    asked = [instructions[j.feature][j.instruction_id] for j in jobs]
    return pl.DataFrame(
        {
            "layer": [layer] * len(jobs),
            "method": [j.method for j in jobs],
            "feature": [j.feature for j in jobs],
            "factor": [j.factor for j in jobs],
            "instruction_id": [j.instruction_id for j in jobs],
            "split": ["select" if j.instruction_id < n_select else "test" for j in jobs],
            "instruction": asked,
            "response": responses,
            "text": [judged_text(protocol, i, r) for i, r in zip(asked, responses, strict=True)],
            "n_tokens": [len(a) for a in answers],
            "seed": seeds,
        },
        schema=CONCEPT_GENERATIONS_SCHEMA,
    )
