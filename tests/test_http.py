"""The shared HTTP policy: refused keys and redirects name the variable, never the key."""

import pytest
import requests

from saesteer.errors import HttpError
from saesteer.http import RETRY_STATUSES, refuse_unauthorized_or_redirected, retrying_session


def response(code: int, location: str | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = code
    if location:
        r.headers["Location"] = location
    return r


@pytest.mark.parametrize(
    ("code", "key_set", "message"),
    [
        (401, False, r"get x: HTTP 401 from http://h/x: the API key in \$KEY is not set"),
        (403, True, r"HTTP 403 .*the API key in \$KEY was rejected"),
    ],
)
def test_a_refused_key_names_its_variable(code, key_set, message):
    with pytest.raises(HttpError, match=message):
        refuse_unauthorized_or_redirected(
            response(code), "get x", "http://h/x", "KEY", key_set, "base_url"
        )


def test_a_redirect_is_not_followed():
    with pytest.raises(HttpError, match="redirects to http://elsewhere/x; not followed.*base_url"):
        refuse_unauthorized_or_redirected(
            response(307, "http://elsewhere/x"), "get x", "http://h/x", "KEY", True, "base_url"
        )
    refuse_unauthorized_or_redirected(response(200), "get x", "http://h/x", "KEY", True, "u")


def test_the_session_retries_rate_limits_and_server_errors():
    session = retrying_session(3, 0.5, frozenset({"GET"}), {"X-Api-Key": "k"})
    retry = session.get_adapter("https://h").max_retries
    assert retry.total == 3 and retry.backoff_factor == 0.5
    assert set(retry.status_forcelist) == set(RETRY_STATUSES)
    assert session.headers["X-Api-Key"] == "k" and "saesteer/" in session.headers["User-Agent"]
