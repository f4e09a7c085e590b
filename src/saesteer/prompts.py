"""The method's fixed prompts, and how a prompt becomes token ids."""

from __future__ import annotations

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
