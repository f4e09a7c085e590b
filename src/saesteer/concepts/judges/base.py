"""The judge interface and its on-disk cache.

A judge gives three ratings in [0, 2] per response: concept (does the text involve the
concept), instruction (does it answer the instruction) and fluency. Each rating depends on
the response and on one prompt text (the rubric filled in with the concept or the
instruction), and is cached on disk under a hash of (judge, aspect, prompt, response), so
a rerun, or another method producing the same text, costs nothing."""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from saesteer.errors import JudgeError
from saesteer.io import write_json

log = logging.getLogger(__name__)

ASPECTS = ("concept", "instruction", "fluency")
MAX_RATING = 2.0


@dataclass(frozen=True)
class Item:
    """One response to rate, with what it was asked to do."""

    concept: str
    instruction: str
    response: str


class Judge(ABC):
    name: str  # the judge's identity: in cache keys and in every output row
    proxy: bool  # True for the offline stand-in, so outputs never pass it off as an LLM judge

    @abstractmethod
    def prompt(self, aspect: str, item: Item) -> str:
        """The text besides the response that `aspect`'s rating of `item` depends on."""

    @abstractmethod
    def rate(self, aspect: str, prompts: list[str], responses: list[str]) -> list[float]:
        """Uncached ratings in [0, 2] of each (prompt, response) pair."""


class JudgeCache:
    """One small JSON file per rating under `root/<judge>/<aa>/<hash>.json`, written
    atomically, so parallel jobs and killed runs never leave a bad entry."""

    def __init__(self, root: str | Path, judge: Judge):
        self.root = Path(root) / _safe(judge.name)
        self.judge = judge.name

    def key(self, aspect: str, prompt: str, response: str) -> str:
        blob = json.dumps([self.judge, aspect, prompt, response], ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> float | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            rating = json.loads(path.read_text())["rating"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable judge cache entry %s", path)
            return None
        # A hand-edited or foreign entry (99, -1, NaN, true, "2") would change every table
        # it reaches, so it is rated again and overwritten instead.
        if not valid_rating(rating):
            log.warning(
                "ignoring judge cache entry %s: rating %r is not a number in [0, %g]; "
                "rating it again",
                path,
                rating,
                MAX_RATING,
            )
            return None
        return float(rating)

    def put(self, key: str, aspect: str, rating: float) -> None:
        write_json({"judge": self.judge, "aspect": aspect, "rating": rating}, self.path(key))


def valid_rating(rating: object) -> bool:
    """A finite int or float (not a bool) in [0, MAX_RATING]; NaN fails both bounds."""
    if isinstance(rating, bool) or not isinstance(rating, int | float):
        return False
    return 0.0 <= rating <= MAX_RATING


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def judge_items(
    judge: Judge, items: list[Item], cache: JudgeCache | None, chunk: int = 256
) -> dict[str, list]:
    """{aspect: ratings} for every item, rating only what the cache lacks; also returns
    `cache_hits` and `rated` (how many ratings were new). Equal (prompt, response) pairs
    are rated once, and new ratings reach the cache every `chunk` pairs, so a failure or
    Ctrl-C loses at most one chunk of paid work."""
    out: dict[str, list] = {"cache_hits": 0, "rated": 0}
    for aspect in ASPECTS:
        prompts = [judge.prompt(aspect, item) for item in items]
        responses = [item.response for item in items]
        ratings: list[float | None] = [None] * len(items)
        keys: list[str | None] = [None] * len(items)
        if cache is not None:
            keys = [cache.key(aspect, p, r) for p, r in zip(prompts, responses, strict=True)]
            ratings = [cache.get(k) for k in keys]
        todo: dict[tuple[str, str], list[int]] = {}
        for i, rating in enumerate(ratings):
            if rating is None:
                todo.setdefault((prompts[i], responses[i]), []).append(i)
        out["cache_hits"] += len(items) - sum(len(v) for v in todo.values())
        pairs = list(todo)
        for start in range(0, len(pairs), chunk):
            part = pairs[start : start + chunk]
            new = judge.rate(aspect, [p for p, _ in part], [r for _, r in part])
            if len(new) != len(part):
                raise JudgeError(f"judge {judge.name}: {len(new)} {aspect} ratings for {len(part)}")
            for pair, rating in zip(part, new, strict=True):
                rating = float(rating)
                if not 0.0 <= rating <= MAX_RATING:
                    raise JudgeError(f"judge {judge.name}: {aspect} rating {rating} not in [0, 2]")
                for i in todo[pair]:
                    ratings[i] = rating
                if cache is not None:
                    cache.put(keys[todo[pair][0]], aspect, rating)
        out["rated"] += len(pairs)
        out[aspect] = ratings
    return out
