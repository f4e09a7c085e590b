"""Instructions for concept steering: a built-in set of everyday requests written for this
project, a user's file, or the paper's released per-concept instruction cache.

Each concept gets `n` instructions; the first `n_select` choose its steering factor and
the rest are its test set. From a pool, a concept's instructions are a sample seeded by
the concept, so adding a concept never changes another's."""

from __future__ import annotations

import json
import random
from pathlib import Path

from saesteer.downloads import missing_file
from saesteer.errors import ConfigError
from saesteer.seeds import row_seed

INSTRUCTIONS = (
    "Give me three tips for sleeping better.",
    "Explain how a rainbow forms, in simple words.",
    "Write a short note thanking a neighbour for watering my plants.",
    "What should I pack for a weekend camping trip?",
    "Suggest a healthy breakfast I can make in ten minutes.",
    "Describe your ideal weekend in a few sentences.",
    "How do I politely decline an invitation to a party?",
    "Write a two-line poem about autumn.",
    "What are some good ways to save money on groceries?",
    "Explain why the sky is blue to a seven-year-old.",
    "Give me a simple recipe for tomato soup.",
    "What is a good way to start learning a new language?",
    "Write a short story about a lost umbrella.",
    "How can I make my mornings less stressful?",
    "Describe the taste of a fresh orange.",
    "Suggest a name for a small bakery.",
    "What are the benefits of taking a daily walk?",
    "Explain how to change a flat bicycle tyre.",
    "Write a friendly reminder about tomorrow's team meeting.",
    "What games can children play on a rainy day?",
    "Give advice to someone starting their first job.",
    "Describe a busy train station in the morning.",
    "How do I keep houseplants alive while I am on holiday?",
    "Write a short product description for a wooden chair.",
    "What should I consider when adopting a dog?",
    "Explain the difference between weather and climate.",
    "Suggest three hobbies that cost very little.",
    "Write an apology for arriving late to dinner.",
    "How do I make a cup of tea properly?",
    "Describe what a library smells like.",
    "What are some tips for writing a clear email?",
    "Plan a simple birthday party for a ten-year-old.",
    "Explain how a refrigerator keeps food cold.",
    "Give me ideas for a quick lunch at work.",
    "Write a short speech to welcome new students.",
    "How can I become more organised at home?",
    "Describe a walk along the beach at sunset.",
    "What are good questions to ask at a job interview?",
    "Explain what compound interest is, briefly.",
    "Suggest a route for a relaxing Sunday bike ride in a city.",
    "Write a message inviting friends to a picnic.",
    "How do I remove a coffee stain from a shirt?",
    "Tell me about the life cycle of a butterfly.",
    "Give me tips for studying for an exam.",
    "Describe your favourite kind of weather and why.",
    "What should I do if I feel homesick?",
    "Write a short review of an imaginary restaurant.",
    "Explain how to plant tomatoes in a garden.",
    "Suggest some ways to stay warm in winter without high bills.",
    "How do I prepare for a long flight?",
    "Write a bedtime story about a sleepy owl.",
    "What makes a good friend?",
    "Explain how bees make honey.",
    "Give me a checklist for moving to a new flat.",
    "Describe the sounds of a city at night.",
    "How can I reduce the time I spend on my phone?",
    "Write a postcard from a holiday in the mountains.",
    "What are simple ways to help the environment at home?",
    "Explain the rules of tic-tac-toe.",
    "Suggest a weekly plan for getting fitter as a beginner.",
)


def _from_pool(pool: list[str], layer: int, feature: int, n: int, seed: int) -> list[str]:
    if len(pool) < n:
        raise ConfigError(f"concepts.instructions: {len(pool)} instructions, need at least {n}")
    return random.Random(row_seed(seed, "instructions", layer, feature)).sample(pool, n)


def read_instruction_file(path: str | Path) -> list[str] | dict[str, list[str]]:
    """A pool (one instruction per line of a text file, or a JSON list of strings), or the
    paper's cache: a JSON object {"<layer>_<index>": [instruction, ...]}."""
    path = Path(path)
    where = f"concepts.instructions.file {path}"
    if not path.is_file():
        raise ConfigError(missing_file("concepts.instructions.file", path))
    if path.suffix != ".json":
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}: not valid JSON ({e})") from None
    if isinstance(data, list) and all(isinstance(x, str) for x in data):
        return data
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise ConfigError(f'{where}: entry "{key}" must be a list of instructions')
        return data
    raise ConfigError(f'{where}: expected a list of strings or {{"<layer>_<index>": [...]}}')


def concept_instructions(
    spec: str | list | dict, layer: int, features: list[int], n: int, seed: int
) -> dict[int, list[str]]:
    """Each feature's `n` instructions, from `builtin`, a list, or `{file: path}`."""
    if spec == "builtin":
        source: list[str] | dict = list(INSTRUCTIONS)
    elif isinstance(spec, dict):
        source = read_instruction_file(spec["file"])
    else:
        source = list(spec)
    if isinstance(source, list):
        return {f: _from_pool(source, layer, f, n, seed) for f in features}
    out = {}
    for f in features:
        given = source.get(f"{layer}_{f}")
        if given is None:
            raise ConfigError(f"concepts.instructions.file: no entry {layer}_{f}")
        if len(given) < n:
            raise ConfigError(
                f"concepts.instructions.file: entry {layer}_{f} has {len(given)} "
                f"instructions, need {n}"
            )
        out[f] = given[:n]
    return out
