"""The sampling settings: one dataclass for the factor grid's continuations and the concept
answers, embedded in each stage's settings. Torch-free, so the workflow reads its keys
(`settings_fields`) without loading a model library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class SamplingSettings:
    SECTIONS: ClassVar = ("generation",)
    temperature: float
    # transformers' default for generate(do_sample=True), which the paper's code relies on;
    # None samples from the full vocabulary
    top_k: int | None
    max_new_tokens: int
    batch_size: int  # rows per forward
    seed: int  # each row's random stream is seeded from it and the row's identity
    # a row stops once its text gains this (None: end of text only); the concept answers'
    # protocol sets it (`concepts.answers.protocol_sampling`)
    stop: str | None = None
