"""The method's fixed prompts, and how a prompt becomes token ids."""

from __future__ import annotations

from pathlib import Path

from saesteer.errors import ConfigError

# The output score's neutral prompt: the public code's text (the paper's says "In my experience,").
OUTPUT_SCORE_PROMPT = "From my experience,"

# The 50 neutral generation prefixes, typographic apostrophes kept as in the source.
PREFIXES = (
    "Findings show that",
    "I once heard that",
    "Then the man said:",
    "I believe that",
    "The news mentioned",
    "She saw a",
    "It is observed that",
    "Studies indicate that",
    "According to reports,",
    "Research suggests that",
    "It has been noted that",
    "I remember when",
    "It all started when",
    "The legend goes that",
    "If I recall correctly,",
    "People often say that",
    "Once upon a time,",
    "It’s no surprise that",
    "Have you ever noticed that",
    "I couldn't believe when",
    "The first thing I heard was",
    "Let me tell you a story about",
    "Someone once told me that",
    "It might sound strange, but",
    "They always warned me that",
    "Nobody expected that",
    "Funny thing is,",
    "I never thought I'd say this, but",
    "What surprised me most was",
    "The other day, I overheard that",
    "Back in the day,",
    "You won’t believe what happened when",
    "A friend of mine once said,",
    "I just found out that",
    "It's been a long time since",
    "In my experience,",
    "The craziest part was when",
    "If you think about it,",
    "I was shocked to learn that",
    "For some reason,",
    "I can’t help but wonder if",
    "It makes sense that",
    "At first, I didn't believe that",
    "That reminds me of the time when",
    "It all comes down to",
    "One time, I saw that",
    "I was just thinking about how",
    "Imagine a world where",
    "They never expected that",
    "I always knew that",
)


def encode_prompt(tokenizer, text: str) -> list[int]:
    """Token ids of `text` led by BOS, as SAEs are trained (and the public code runs) on
    BOS-led contexts; tokenizers disagree on adding it themselves, so it is added here."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return ids if bos is None else [bos, *ids]


def resolve_prefixes(spec: str | list | dict, n: int | None = None) -> list[str]:
    """The generation prefixes: `method` (the method's 50), a list, or `{file: path}` with
    one prefix per line; the first `n` of them when `n` is set."""
    if spec == "method":
        prefixes = list(PREFIXES)
    elif isinstance(spec, dict):
        path = Path(spec["file"])
        if not path.is_file():
            raise ConfigError(f"generation.prefixes.file: {path} not found")
        prefixes = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        prefixes = list(spec)
    prefixes = resolved_prefixes(tuple(prefixes))
    if n is not None and n > len(prefixes):
        raise ConfigError(f"generation.n_prefixes: {n} > the {len(prefixes)} prefixes")
    return prefixes[:n]


def resolved_prefixes(prefixes: tuple[str, ...] | str | dict) -> list[str]:
    """A stage's prefixes, already resolved by the workflow (`resolve_prefixes`, once per
    run): a spec is refused rather than resolved a second time."""
    if isinstance(prefixes, str | dict):
        raise ConfigError(
            f"generation.prefixes: {prefixes!r} is a spec; the stage takes the resolved list "
            "(the workflow resolves `method`, `{file: …}` and n_prefixes)"
        )
    if not prefixes or any(not isinstance(p, str) or not p for p in prefixes):
        raise ConfigError("generation.prefixes: need one or more non-empty prefixes")
    return list(prefixes)
