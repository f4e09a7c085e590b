"""Neuronpedia's feature API: one cached JSON per feature, so a killed download resumes
where it stopped. Retries (429, 5xx, timeouts, dropped connections) are urllib3's `Retry`
with exponential backoff and `Retry-After`; concurrency is a bounded thread pool."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote, urlsplit

import requests

from saesteer.activations import Example, parse_feature_json
from saesteer.config import with_layer
from saesteer.errors import NeuronpediaError
from saesteer.http import (
    RETRY_STATUSES,
    refuse_unauthorized_or_redirected,
    retrying_session,
    run_bounded,
)
from saesteer.io import is_finite_number, loads_json, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NeuronpediaSettings:
    SECTIONS: ClassVar = ("activations.neuronpedia",)
    model_id: str
    source: str  # template, `{layer}` is filled in, e.g. "{layer}-gemmascope-res-16k"
    base_url: str
    api_key_env: str
    concurrency: int
    retries: int
    backoff: float
    timeout: float
    cache_dir: str

    def source_id(self, layer: int) -> str:
        return with_layer(self.source, layer, "activations.neuronpedia.source")

    def url(self, layer: int, feature: int) -> str:
        path = "/".join(quote(p, safe="") for p in (self.model_id, self.source_id(layer)))
        return f"{self.base_url.rstrip('/')}/api/feature/{path}/{feature}"

    def cache_path(self, layer: int, feature: int) -> Path:
        """Per host too, so a mirror's answers are never taken for another server's."""
        host = urlsplit(self.base_url).netloc.replace(":", "_")
        folder = Path(self.cache_dir) / host / self.model_id / self.source_id(layer)
        return folder / f"{feature}.json"


def fetch_features(
    settings: NeuronpediaSettings, layer: int, features: list[int]
) -> dict[int, list[Example]]:
    """Every feature's examples, downloading only those not yet cached."""
    missing = [f for f in features if not settings.cache_path(layer, f).is_file()]
    log.info(
        "layer %d: %d of %d features cached under %s, %d to download from %s",
        layer,
        len(features) - len(missing),
        len(features),
        settings.cache_path(layer, 0).parent,
        len(missing),
        settings.base_url,
    )
    if missing:
        _download(settings, layer, missing)
    return {f: read_cached(settings, layer, f) for f in features}


def read_cached(settings: NeuronpediaSettings, layer: int, feature: int) -> list[Example]:
    path = settings.cache_path(layer, feature)
    data = loads_json(path.read_bytes(), f"feature {feature}: cached {path}")
    return parse_feature_json(data, f"feature {feature} ({path})")


def cached_density(settings: NeuronpediaSettings, layer: int, feature: int) -> float | None:
    """The share of tokens the feature fires on, from its cached JSON's `frac_nonzero`;
    None when the response has none (it is optional there)."""
    path = settings.cache_path(layer, feature)
    value = loads_json(path.read_bytes(), f"feature {feature}: cached {path}").get("frac_nonzero")
    if value is None:
        return None
    if not is_finite_number(value) or not 0 <= value <= 1:
        raise NeuronpediaError(
            f"feature {feature} ({path}): frac_nonzero must be a number in [0, 1], got {value!r}"
        )
    return float(value)


def _download(settings: NeuronpediaSettings, layer: int, features: list[int]) -> None:
    client = _Client(settings)
    run_bounded(
        lambda i: _fetch_one(client, settings, layer, features[i]),
        len(features),
        settings.concurrency,
        f"neuronpedia layer {layer}",
        "feature",
    )


def _fetch_one(client: _Client, settings: NeuronpediaSettings, layer: int, feature: int) -> None:
    url = settings.url(layer, feature)
    data = client.get_json(url, f"feature {feature}")
    # Validated before caching, so the cache never holds a file that cannot be read back,
    # nor another feature's (a proxy or a server bug answering for the wrong id).
    parse_feature_json(data, f"feature {feature} ({url})")
    check_identity(data, settings.model_id, settings.source_id(layer), feature, url)
    write_json(data, settings.cache_path(layer, feature))


def check_identity(data: dict, model_id: str, source: str, feature: int, url: str) -> None:
    """The reply must be the feature asked for: its modelId, layer (the source id) and
    index, where it gives them, equal the request's."""
    asked = {"modelId": model_id, "layer": source, "index": str(feature)}
    got = {key: str(data[key]) for key in asked if data.get(key) is not None}
    wrong = {key: value for key, value in got.items() if value != asked[key]}
    if wrong:
        said = ", ".join(f"{k} {v!r} (asked {asked[k]!r})" for k, v in wrong.items())
        raise NeuronpediaError(
            f"feature {feature} ({url}): the reply is another feature's: {said}; not cached"
        )


class _Client:
    """One `requests.Session` per thread, each with the same retry policy."""

    def __init__(self, settings: NeuronpediaSettings):
        self.settings = settings
        self.key = os.environ.get(settings.api_key_env) or None
        self.local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            s = self.settings
            headers = {"X-Api-Key": self.key} if self.key else {}
            self.local.session = retrying_session(
                s.retries, s.backoff, frozenset({"GET"}), headers, max_wait=s.timeout
            )
        return self.local.session

    def get_json(self, url: str, what: str):
        s = self.settings
        try:
            # Redirects are not followed: requests would carry X-Api-Key to any host.
            response = self.session().get(url, timeout=s.timeout, allow_redirects=False)
        except requests.RequestException as e:
            # urllib3 wraps the last failure (a timeout, a refused connection) in its reason.
            reason = getattr(e.args[0], "reason", e) if e.args else e
            raise NeuronpediaError(
                f"{what}: GET {url} failed after {s.retries} retries ({reason})"
            ) from None
        refuse_unauthorized_or_redirected(
            response,
            what,
            url,
            s.api_key_env,
            bool(self.key),
            "activations.neuronpedia.base_url",
        )
        if response.status_code == 404:
            raise NeuronpediaError(
                f"{what}: HTTP 404, not found at {url} (check neuronpedia.model_id, "
                f"neuronpedia.source and the feature id)"
            )
        if response.status_code != 200:
            code = response.status_code
            after = f" after {s.retries} retries" if code in RETRY_STATUSES else ""
            raise NeuronpediaError(f"{what}: HTTP {code} from {url}{after}")
        # Not response.json(): it takes NaN and Infinity, which would then reach the cache.
        return loads_json(response.content, f"{what}: malformed JSON from {url}")


def feature_explanations(
    settings: NeuronpediaSettings, layer: int, features: list[int]
) -> dict[int, str]:
    """Each feature's first Neuronpedia explanation (`explanations[].description`), from
    the same per-feature cache as its activations; features without one are left out."""
    missing = [f for f in features if not settings.cache_path(layer, f).is_file()]
    if missing:
        _download(settings, layer, missing)
    out = {}
    for feature in features:
        path = settings.cache_path(layer, feature)
        data = loads_json(path.read_bytes(), f"feature {feature}: cached {path}")
        if not isinstance(data, dict):
            raise NeuronpediaError(f"feature {feature}: cached {path} is not a JSON object")
        explanations = data.get("explanations") or []
        if not isinstance(explanations, list):
            raise NeuronpediaError(f"feature {feature} ({path}): `explanations` is not a list")
        for entry in explanations:
            text = entry.get("description") if isinstance(entry, dict) else None
            if isinstance(text, str) and text.strip():
                out[feature] = text.strip()
                break
    return out
