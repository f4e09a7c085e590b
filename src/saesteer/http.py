"""The one retry policy for every HTTP client here: urllib3's `Retry` on rate limits and
server errors, with exponential backoff and the server's `Retry-After` honoured."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry

from saesteer import __version__
from saesteer.errors import HttpError

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)


class CappedRetry(Retry):
    """urllib3's Retry, with a server's Retry-After honoured up to `max_wait` seconds: a
    server asking for 40 s under `timeout: 5` would otherwise stretch each retry to 40 s
    (88 s of wall time in all, seen). The cap is logged where it applies."""

    max_wait: float | None = None

    def new(self, **kw):
        retry = super().new(**kw)
        retry.max_wait = self.max_wait
        return retry

    def get_retry_after(self, response):
        after = super().get_retry_after(response)
        if after is not None and self.max_wait is not None and after > self.max_wait:
            log.warning(
                "Retry-After %g s from %s capped at %g s (the request timeout setting)",
                after,
                getattr(response, "geturl", lambda: "the server")(),
                self.max_wait,
            )
            return self.max_wait
        return after


def retrying_session(
    retries: int,
    backoff: float,
    methods: frozenset[str],
    headers: dict[str, str],
    max_wait: float | None = None,
) -> requests.Session:
    """A session that retries `methods` on RETRY_STATUSES, timeouts and dropped connections,
    each Retry-After wait capped at `max_wait` seconds (callers pass their timeout). After
    the last retry the final response is returned, not raised, so callers can report its
    status code themselves."""
    retry = CappedRetry(
        total=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=methods,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    retry.max_wait = max_wait
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.headers["User-Agent"] = f"saesteer/{__version__}"
    session.headers.update(headers)
    return session


def refuse_unauthorized_or_redirected(
    response: requests.Response,
    what: str,
    url: str,
    key_env: str,
    key_set: bool,
    base_url_field: str,
) -> None:
    """Raise HttpError for a rejected key (naming its variable, never the key) or a redirect:
    redirects are never followed, since requests would carry the key to any host."""
    code = response.status_code
    if code in (401, 403):
        state = "was rejected" if key_set else "is not set"
        raise HttpError(f"{what}: HTTP {code} from {url}: the API key in ${key_env} {state}")
    if response.is_redirect:
        target = response.headers.get("Location", "?")
        raise HttpError(
            f"{what}: HTTP {code} from {url} redirects to {target}; not followed, so the API "
            f"key goes nowhere else (point {base_url_field} there)"
        )


def secret_forms(secret: str) -> list[str]:
    """The texts by which `secret` can reach a log: as is (matched without case, so its
    upper- and lower-cased forms too), URL-quoted, hex, and base64 (standard and URL-safe)
    at each of the three byte alignments it can have inside a longer encoded text (a
    Basic-auth header, a JSON dump), each cut to the characters that depend on it alone."""
    import base64
    from urllib.parse import quote

    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), raw.hex()}
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * pad + raw).decode()
            inner = text[4 if pad else 0 : -4]  # the edges mix in padding or other bytes
            if len(inner) >= 8:
                forms.add(inner)
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def scrub_secret(text: str, secret: str) -> str:
    """`text` with every form of `secret` (`secret_forms`) replaced by ***."""
    import re

    if not secret:
        return text
    pattern = "|".join(re.escape(f) for f in secret_forms(secret))
    return re.sub(pattern, "***", text, flags=re.IGNORECASE)


def is_loopback(url: str) -> bool:
    """Whether `url`'s host is this machine (localhost, 127.0.0.0/8, ::1)."""
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_bounded(task: Callable[[int], None], n: int, concurrency: int, desc: str, unit: str):
    """task(i) for i < n on a pool of `concurrency` threads, with a progress bar. The first
    error, or Ctrl-C, drops the queued tasks and is raised."""
    with (
        ThreadPoolExecutor(max(1, concurrency)) as pool,
        tqdm(total=n, desc=desc, unit=unit) as bar,
    ):
        futures = [pool.submit(task, i) for i in range(n)]
        for future in futures:
            future.add_done_callback(lambda _: bar.update())
        try:
            pending = set(futures)
            while pending:
                # A timeout, so the main thread wakes to take Ctrl-C: the signal may land
                # on a worker thread, and an untimed wait would sleep through it.
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                for future in done:
                    future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
