"""An LLM judge behind any OpenAI-compatible `/chat/completions` endpoint.

Each (prompt, response) pair is one POST, retried by urllib3 on 429/5xx/timeouts (see
`saesteer.http`), run on a bounded thread pool whose request starts are spaced by a shared
rate limiter. The API key is read from an environment variable and never appears in an
error, a log line or a cache entry."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import requests

from saesteer.concepts.judges.base import ASPECTS, Item, Judge
from saesteer.errors import JudgeError
from saesteer.http import (
    RETRY_STATUSES,
    is_loopback,
    refuse_unauthorized_or_redirected,
    retrying_session,
    run_bounded,
    scrub_secret,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatSettings:
    SECTIONS: ClassVar = ("concepts.judge.chat",)
    base_url: str
    model: str
    api_key_env: str
    retries: int
    backoff: float
    timeout: float
    concurrency: int
    requests_per_minute: float  # across all threads; 0 = unlimited
    max_tokens: int
    temperature: float
    rubrics: str | None  # a YAML file of prompts (see `load_rubrics`); None: RUBRICS

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/chat/completions"


SYSTEM = (
    "You are a careful, consistent grader of short texts. Apply the rubric you are given "
    "literally, and always finish with the rating line it asks for."
)

_ENDING = (
    "Give at most one short sentence of reasoning, then end your reply with a line of exactly "
    "this form:\nRating: <0|1|2>"
)

RUBRICS = {
    "concept": (
        "Does the response below involve this concept: {concept}\n\n"
        "Rate only how present the concept is; ignore the text's quality and whether it "
        "answers any question.\n"
        "0 = the concept is absent.\n"
        "1 = the concept shows up only weakly, in passing or indirectly.\n"
        "2 = the concept is clearly and substantially present.\n\n" + _ENDING
    ),
    "instruction": (
        "Does the response below answer this instruction: {instruction}\n\n"
        "Rate only how well it addresses what was asked; ignore style, and ignore extra "
        "topics unless they crowd out the answer.\n"
        "0 = it does not address the instruction, or is unrelated to it.\n"
        "1 = it addresses the instruction only partly, or drifts away from it.\n"
        "2 = it addresses the instruction fully.\n\n" + _ENDING
    ),
    "fluency": (
        "How fluent is the response below as written language?\n\n"
        "Rate only the language itself, not its topic, accuracy or relevance.\n"
        "0 = broken: garbled, heavily repetitive or hard to read.\n"
        "1 = readable but awkward, with noticeable errors or repetition.\n"
        "2 = natural, well-formed text.\n\n" + _ENDING
    ),
}

BEGIN = "=== BEGIN RESPONSE ==="
END = "=== END RESPONSE ==="

# Where a rubric file's prompt takes the response inline; AxBench's templates say
# {sentence}. In a filled-in prompt the place is held by a mark no concept or
# instruction text can contain, so their own braces are never filled in.
RESPONSE_PLACES = ("{sentence}", "{response}")
_HERE = "\x00response\x00"

# "Rating: 2", "**Rating:** [[2]]", "Rating: 2/2", "Rating: <1>."; not "Rating: 1.5", "12".
_PAD = r"[\s*_\[\](){}<>\"'`]*"
_RATING = re.compile(rf"rating{_PAD}:{_PAD}([012])(?![\d.]*\d)", re.IGNORECASE)
# A bare "[[2]]", the form AxBench's templates ask for.
_BRACKETED = re.compile(r"\[\[\s*([012])\s*\]\]")


def user_message(prompt: str, response: str) -> str:
    """The prompt with the response in its place, or else the prompt, then the response
    between markers, so the judge cannot mistake text in the response for part of its
    instructions' ending."""
    if _HERE in prompt:
        return prompt.replace(_HERE, response)
    return f"{prompt}\n\n{BEGIN}\n{response}\n{END}"


def parse_rating(reply: str) -> int | None:
    """The last `Rating: N` (`Rating: [[N]]` included) in the reply, else its last bare
    `[[N]]`, or None."""
    found = _RATING.findall(reply) or _BRACKETED.findall(reply)
    return int(found[-1]) if found else None


@dataclass(frozen=True)
class Rubrics:
    """The judge's prompts: one template per aspect, and the system message ("" = none)."""

    templates: dict[str, str]
    system: str = SYSTEM

    def fill(self, aspect: str, item: Item) -> str:
        text = self.templates[aspect]
        for place in RESPONSE_PLACES:
            text = text.replace(place, _HERE)
        # One pass over both fields, so a concept holding "{instruction}" stays as it is.
        fields = {"{concept}": item.concept, "{instruction}": item.instruction}
        return re.sub(r"\{concept\}|\{instruction\}", lambda m: fields[m.group(0)], text)


NEEDS = {"concept": "{concept}", "instruction": "{instruction}", "fluency": None}


def load_rubrics(path: str | None) -> Rubrics:
    """The built-in rubrics (None), or a YAML file with keys concept, instruction and
    fluency (prompt templates) and, optionally, system."""
    if path is None:
        return Rubrics(dict(RUBRICS))
    import yaml

    where = f"concepts.judge.chat.rubrics: {path}"
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JudgeError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise JudgeError(f"{where}: unreadable ({e})") from None
    if not isinstance(data, dict):
        raise JudgeError(f"{where}: expected a mapping with keys {', '.join(ASPECTS)}")
    unknown = sorted(set(map(str, data)) - {*ASPECTS, "system"})
    if unknown:
        raise JudgeError(f"{where}: unknown keys {unknown} (known: {', '.join(ASPECTS)}, system)")
    templates = {}
    for aspect in ASPECTS:
        text = data.get(aspect)
        if not isinstance(text, str) or not text.strip():
            raise JudgeError(f"{where}: {aspect!r} must be a non-empty prompt template")
        if NEEDS[aspect] and NEEDS[aspect] not in text:
            raise JudgeError(f"{where}: the {aspect} prompt has no {NEEDS[aspect]} to fill in")
        if sum(text.count(place) for place in RESPONSE_PLACES) > 1:
            raise JudgeError(f"{where}: the {aspect} prompt places the response twice")
        templates[aspect] = text
    system = data.get("system", SYSTEM)  # absent: the built-in one
    if not isinstance(system, str):
        raise JudgeError(f"{where}: 'system' must be a string (empty: no system message)")
    return Rubrics(templates, system)


class ChatJudge(Judge):
    proxy = False

    def __init__(self, settings: ChatSettings):
        self.settings = settings
        self.rubrics = load_rubrics(settings.rubrics)
        # What the ratings depend on besides (prompt, response): a change of system
        # prompt or sampling never reuses old cached ratings.
        behaviour = json.dumps([self.rubrics.system, settings.temperature, settings.max_tokens])
        digest = hashlib.sha256(behaviour.encode()).hexdigest()[:8]
        self.name = f"chat:{settings.model}@{urlsplit(settings.base_url).netloc}:{digest}"

    def prompt(self, aspect: str, item: Item) -> str:
        if aspect not in ASPECTS:
            raise JudgeError(f"judge {self.name}: unknown aspect {aspect!r}")
        return self.rubrics.fill(aspect, item)

    def rate(self, aspect: str, prompts: list[str], responses: list[str]) -> list[float]:
        s = self.settings
        # Checked before any request, so a missing key fails at once rather than as a 401.
        key = os.environ.get(s.api_key_env)
        if not key:
            raise JudgeError(
                f"judge {self.name}: ${s.api_key_env} is not set; it must hold the API key "
                f"for {s.base_url}"
            )
        if urlsplit(s.base_url).scheme != "https" and not is_loopback(s.base_url):
            raise JudgeError(
                f"concepts.judge.chat.base_url: {s.base_url} is plain http to another host: "
                f"${s.api_key_env} would cross the network unencrypted; use https (plain "
                "http only for a server on this machine)"
            )
        log.info(
            "judge %s: sending $%s as the bearer token to %s",
            self.name,
            s.api_key_env,
            urlsplit(s.base_url).netloc,
        )
        client = _Client(self, aspect, key)
        ratings: list[float | None] = [None] * len(prompts)

        def one(i: int) -> None:
            ratings[i] = client.rating(user_message(prompts[i], responses[i]))

        try:
            run_bounded(one, len(prompts), s.concurrency, f"judge {aspect}", "rating")
        finally:
            client.close()
        return ratings  # type: ignore[return-value]


class RateLimiter:
    """A minimum interval between request starts across threads. Each caller reserves the
    next free slot under the lock and sleeps outside it, so waiting threads queue fairly."""

    def __init__(self, per_minute: float):
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.lock = threading.Lock()
        self.next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
        if start > now:
            time.sleep(start - now)


class _Client:
    """One retrying session per thread, sharing one rate limiter."""

    def __init__(self, judge: ChatJudge, aspect: str, key: str):
        self.settings = judge.settings
        self.system = judge.rubrics.system
        self.what = f"judge {judge.name}: {aspect}"
        self.key = key
        self.limiter = RateLimiter(judge.settings.requests_per_minute)
        self.local = threading.local()
        self.sessions: list[requests.Session] = []
        self.lock = threading.Lock()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            s = self.settings
            headers = {"Authorization": f"Bearer {self.key}"}
            session = retrying_session(
                s.retries, s.backoff, frozenset({"POST"}), headers, max_wait=s.timeout
            )
            with self.lock:
                self.sessions.append(session)
            self.local.session = session
        return self.local.session

    def close(self) -> None:
        for session in self.sessions:
            session.close()

    def rating(self, message: str) -> float:
        # A reply without a rating line is asked once more before giving up: a model
        # sometimes runs out of tokens or forgets the format.
        for attempt in range(2):
            # The second ask has more room, in case the first ran out of tokens.
            reply = self.reply(message, self.settings.max_tokens * (1 + attempt))
            rating = parse_rating(reply)
            if rating is not None:
                return float(rating)
            log.debug(
                "%s: no rating in reply %r, asking again", self.what, self._excerpt(reply, 200)
            )
        raise JudgeError(
            f"{self.what}: no rating ('Rating: N', 'Rating: [[N]]' or '[[N]]', N in 0, 1, 2) "
            f"in the reply from {self.settings.url} "
            f"(asked twice); it starts {self._excerpt(reply, 200)!r}"
        )

    def reply(self, message: str, max_tokens: int) -> str:
        s = self.settings
        body = {
            "model": s.model,
            "messages": [
                *([{"role": "system", "content": self.system}] if self.system else []),
                {"role": "user", "content": message},
            ],
            "temperature": s.temperature,
            "max_tokens": max_tokens,
        }
        self.limiter.wait()
        try:
            # Redirects are not followed: requests would carry the bearer key to any host.
            response = self.session().post(
                s.url, json=body, timeout=s.timeout, allow_redirects=False
            )
        except requests.RequestException as e:
            # urllib3 wraps the last failure (a timeout, a refused connection) in its reason.
            reason = getattr(e.args[0], "reason", e) if e.args else e
            raise JudgeError(
                f"{self.what}: POST {s.url} failed after {s.retries} retries "
                f"({self._scrub(str(reason))})"
            ) from None
        self._check_status(response)
        try:
            data = response.json()
        except ValueError as e:
            raise JudgeError(f"{self.what}: malformed JSON from {s.url} ({e})") from None
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise JudgeError(
                f"{self.what}: no choices[0].message.content in the reply from {s.url}; "
                f"it starts {self._excerpt(response.text, 200)!r}"
            )
        return content

    def _check_status(self, response: requests.Response) -> None:
        s = self.settings
        code = response.status_code
        refuse_unauthorized_or_redirected(
            response, self.what, s.url, s.api_key_env, True, "base_url"
        )
        if code == 404:
            raise JudgeError(
                f"{self.what}: HTTP 404 from {s.url}: check base_url and that the server "
                f"serves the model {s.model!r}"
            )
        if code != 200:
            after = f" after {s.retries} retries" if code in RETRY_STATUSES else ""
            raise JudgeError(
                f"{self.what}: HTTP {code} from {s.url}{after}: "
                f"{self._excerpt(response.text, 300)!r}"
            )

    def _scrub(self, text: str) -> str:
        # Some servers echo the key back in error bodies, cased or encoded; it must not
        # reach a message in any form.
        return scrub_secret(text, self.key)

    def _excerpt(self, text: str, n: int) -> str:
        # Scrubbed before the cut: a cut through the key would leave a part no scrub finds.
        return self._scrub(text)[:n]
