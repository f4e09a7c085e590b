"""The Neuronpedia client against a real HTTP server on loopback."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from saesteer.activations import parse_feature_json
from saesteer.errors import HttpError, NeuronpediaError, SaesteerError
from saesteer.features import FEATURES_SCHEMA, features_frame
from saesteer.io import write_parquet
from saesteer.neuronpedia import NeuronpediaSettings, feature_explanations, fetch_features
from saesteer.settings import settings_for
from tests.fake_neuronpedia import (
    MODEL_ID,
    RECORDED,
    SOURCE,
    FakeNeuronpedia,
    Reply,
    feature_json,
)

LAYER = 3


@pytest.fixture
def server():
    with FakeNeuronpedia() as fake:
        yield fake


def settings(url: str, cache: Path, **overrides) -> NeuronpediaSettings:
    fields = {
        "model_id": MODEL_ID,
        "source": SOURCE,
        "base_url": url,
        "api_key_env": "SAESTEER_TEST_NP_KEY",
        "concurrency": 3,
        "retries": 2,
        "backoff": 0.0,
        "timeout": 0.5,
        "cache_dir": str(cache),
    }
    return settings_for(NeuronpediaSettings, **{**fields, **overrides})


@pytest.fixture(autouse=True)
def no_key(monkeypatch):
    monkeypatch.delenv("SAESTEER_TEST_NP_KEY", raising=False)


def test_downloads_parse_and_cache_each_feature(server, tmp_path):
    api = settings(server.url, tmp_path)
    examples = fetch_features(api, LAYER, [5, 9])
    assert examples[5] == parse_feature_json(feature_json(5), "expected")
    assert [e.max_token_index for e in examples[9]] == [2] * 12
    assert examples[9][0].tokens[2] == "w9" and examples[9][1].tokens[2] == "w10"
    cached = api.cache_path(LAYER, 5)
    host = server.url.removeprefix("http://").replace(":", "_")
    assert cached == tmp_path / host / MODEL_ID / f"{LAYER}-res-test" / "5.json"
    assert json.loads(cached.read_text()) == feature_json(5)
    assert api.url(LAYER, 5) == f"{server.url}/api/feature/{MODEL_ID}/3-res-test/5"
    # Cached features are never fetched again.
    assert fetch_features(api, LAYER, [5, 9]) == examples
    assert server.requests == {5: 1, 9: 1}


def test_429_then_success_honours_retry_after(server, tmp_path):
    server.script[4] = [Reply(429, b"{}", headers={"Retry-After": "1"}), Reply()]
    start = time.monotonic()
    examples = fetch_features(settings(server.url, tmp_path, timeout=2.0), LAYER, [4])
    assert len(examples[4]) == 12 and server.requests[4] == 2
    assert time.monotonic() - start >= 0.9  # waited as told (within the timeout)


def test_server_errors_are_retried_then_reported(server, tmp_path):
    server.script[1] = [Reply(500, b"oops"), Reply(503, b"busy"), Reply()]
    server.script[2] = [Reply(500, b"oops")]
    assert len(fetch_features(settings(server.url, tmp_path), LAYER, [1])[1]) == 12
    assert server.requests[1] == 3
    with pytest.raises(NeuronpediaError, match=r"feature 2: HTTP 500 from .*/2 after 2 retries"):
        fetch_features(settings(server.url, tmp_path), LAYER, [2])
    assert server.requests[2] == 3  # the first try and 2 retries
    assert not settings(server.url, tmp_path).cache_path(LAYER, 2).exists()


def test_a_timeout_is_retried_then_reported(server, tmp_path):
    server.script[6] = [Reply(delay=2.0), Reply()]
    assert len(fetch_features(settings(server.url, tmp_path), LAYER, [6])[6]) == 12
    assert server.requests[6] == 2
    server.script[7] = [Reply(delay=2.0)]
    with pytest.raises(
        NeuronpediaError, match=r"feature 7: GET .*/7 failed after 1 retries.*timed out"
    ):
        fetch_features(settings(server.url, tmp_path, retries=1), LAYER, [7])
    assert server.requests[7] == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"activations": [', "feature 8: malformed JSON from"),
        (b'{"index": "8"}', "feature 8 .*: no 'activations' list"),
        (b"null", "feature 8 .*: expected a feature object, got NoneType"),
        (
            b'{"activations": [{"tokens": ["a", "b"], "values": [1.0]}]}',
            r"feature 8 .*activations\[0\]: 2 tokens and 1 values",
        ),
        (b'{"activations": [{"tokens": ["a"], "values": ["x"]}]}', "'values' must be a list"),
    ],
)
def test_malformed_responses_name_the_feature_and_are_not_cached(server, tmp_path, body, message):
    server.script[8] = [Reply(200, body)]
    with pytest.raises(SaesteerError, match=message):  # DataFileError for malformed JSON
        fetch_features(settings(server.url, tmp_path), LAYER, [8])
    assert not list(tmp_path.rglob("*.json"))


def test_404_names_the_feature_and_the_settings(server, tmp_path):
    with pytest.raises(NeuronpediaError, match=r"feature 3: HTTP 404, not found at .*neuronpedia"):
        fetch_features(settings(server.url, tmp_path, model_id="no-such-model"), LAYER, [3])


def test_api_key_is_sent_and_never_logged_or_written(tmp_path, monkeypatch, caplog):
    secret = "np-secret-4f1d9c"
    with FakeNeuronpedia(api_key=secret) as server:
        with pytest.raises(HttpError, match=r"HTTP 401 .*SAESTEER_TEST_NP_KEY is not set"):
            fetch_features(settings(server.url, tmp_path), LAYER, [1])
        monkeypatch.setenv("SAESTEER_TEST_NP_KEY", "wrong")
        with pytest.raises(HttpError, match="SAESTEER_TEST_NP_KEY was rejected"):
            fetch_features(settings(server.url, tmp_path), LAYER, [1])
        monkeypatch.setenv("SAESTEER_TEST_NP_KEY", secret)
        with caplog.at_level(logging.DEBUG):
            assert len(fetch_features(settings(server.url, tmp_path), LAYER, [1, 2])[2]) == 12
        assert server.keys_seen[-2:] == [secret, secret]
    assert secret not in caplog.text
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and secret in p.read_text()]


def test_redirects_are_not_followed_so_the_key_stays(tmp_path, monkeypatch):
    monkeypatch.setenv("SAESTEER_TEST_NP_KEY", "np-secret-4f1d9c")
    with FakeNeuronpedia() as server, FakeNeuronpedia() as elsewhere:
        location = f"{elsewhere.url}/api/feature/{MODEL_ID}/3-res-test/1"
        server.script[1] = [Reply(302, b"", headers={"Location": location})]
        with pytest.raises(HttpError, match=f"feature 1: HTTP 302 .* redirects to {location}"):
            fetch_features(settings(server.url, tmp_path), LAYER, [1])
    assert server.keys_seen == ["np-secret-4f1d9c"]
    assert elsewhere.keys_seen == [] and not elsewhere.requests


def test_concurrency_is_bounded(server, tmp_path):
    for index in range(12):
        server.script[index] = [Reply(delay=0.1)]
    fetch_features(settings(server.url, tmp_path, concurrency=3), LAYER, list(range(12)))
    assert 2 <= server.max_in_flight <= 3


def _cli(tmp_path, api: NeuronpediaSettings, features: list[int]) -> list[str]:
    write_parquet(features_frame(LAYER, features), tmp_path / "features.parquet", FEATURES_SCHEMA)
    section = {k: v for k, v in api.__dict__.items()}
    return [
        *(sys.executable, "-m", "saesteer.cli", "activations", "--layer", str(LAYER)),
        *("--features", str(tmp_path / "features.parquet")),
        *("--out", str(tmp_path / "activations.parquet"), "--settings"),
        json.dumps({"source": "neuronpedia", "n_examples": 10, "neuronpedia": section}),
        *("--out-densities", str(tmp_path / "densities.parquet")),
    ]


def _wait_for(condition, process, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)


def test_ctrl_c_stops_the_queue(server, tmp_path):
    for index in range(20):
        server.script[index] = [Reply(delay=0.5)]
    api = settings(server.url, tmp_path / "cache", concurrency=2, timeout=10.0)
    process = subprocess.Popen(_cli(tmp_path, api, list(range(20))), stderr=subprocess.PIPE)
    cache = api.cache_path(LAYER, 0).parent
    _wait_for(lambda: len(list(cache.glob("[0-9]*.json"))) >= 2, process)
    os.kill(process.pid, signal.SIGINT)
    assert process.wait(timeout=10) != 0
    assert sum(server.requests.values()) <= 8  # not the 20 queued
    assert not (tmp_path / "activations.parquet").exists()


def test_a_killed_download_resumes_without_refetching(server, tmp_path):
    """Kill the real CLI mid-download; the rerun fetches only what was not cached."""
    features = list(range(6))
    for index in features[3:]:
        server.script[index] = [Reply(delay=60.0)]
    api = settings(server.url, tmp_path / "cache", concurrency=1, timeout=120.0)
    command = _cli(tmp_path, api, features)
    cache = api.cache_path(LAYER, 0).parent
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    _wait_for(lambda: len(list(cache.glob("[0-9]*.json"))) >= 3 and server.requests[3], process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "activations.parquet").exists()
    assert sorted(p.name for p in cache.glob("[0-9]*.json")) == ["0.json", "1.json", "2.json"]

    server.script.clear()
    server.requests.clear()
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert set(server.requests) == {3, 4, 5}
    frame = pl.read_parquet(tmp_path / "activations.parquet")
    assert frame.group_by("feature").len().sort("feature").rows() == [(f, 10) for f in features]
    # Strongest first: the fake's examples decrease in value, so the order is the API's.
    assert frame.filter(pl.col("feature") == 4)["max_value"].to_list() == pytest.approx(
        [3.0 - 0.1 * j for j in range(10)]
    )
    # Each feature's density is the API's frac_nonzero (the recorded response's 0.0037).
    densities = pl.read_parquet(tmp_path / "densities.parquet")
    assert densities.select("feature", "density", "density_source").rows() == [
        (f, 0.0037, "neuronpedia") for f in features
    ]


def test_explanations_come_from_the_same_cache(server, tmp_path):
    """A feature with an explanation gives its first non-empty description; a cached
    feature is not fetched again; one without explanations is left out."""
    from tests.fake_neuronpedia import feature_json

    with_text = feature_json(4) | {"explanations": [{"description": " "}, {"description": "sea"}]}
    server.script[4] = [Reply(200, json.dumps(with_text).encode())]
    got = feature_explanations(settings(server.url, tmp_path), LAYER, [4, 5])
    assert got == {4: "sea"}
    assert feature_explanations(settings(server.url, tmp_path), LAYER, [4, 5]) == got
    assert server.requests[4] == 1 and server.requests[5] == 1
    bad = feature_json(6) | {"explanations": "sea"}
    server.script[6] = [Reply(200, json.dumps(bad).encode())]
    with pytest.raises(NeuronpediaError, match="feature 6 .*not a list"):
        feature_explanations(settings(server.url, tmp_path), LAYER, [6])


# A real response of GET /api/feature/gemma-2-2b/20-gemmascope-res-16k/8837 (where it
# comes from: tests/data/neuronpedia/README.md), checked against the official client's own
# parsing.
RECORDED_FEATURE = json.loads(RECORDED.read_text())


def _official_activation(record: dict):
    """The official client (`neuronpedia` 1.2.1) builds an Activation from a database row:
    it reads `source` where the API sends `layer`, and refuses the API's binContains -1
    (a top example, not a quantile sample). Only those two are adapted."""
    from neuronpedia.np_activation import Activation

    contains = None if record["binContains"] == -1 else record["binContains"]
    return Activation.from_np_db_json(record | {"source": record["layer"], "binContains": contains})


def test_the_parser_reads_a_recorded_response_as_the_official_client_does():
    ours = parse_feature_json(RECORDED_FEATURE, "recorded")
    records = RECORDED_FEATURE["activations"]
    official = [_official_activation(r) for r in records]
    assert len(ours) == len(official) == 3
    for example, activation, record in zip(ours, official, records, strict=True):
        assert example.tokens == activation.tokens and len(example.tokens) == 127
        assert example.values == activation.values
        assert activation.index == int(RECORDED_FEATURE["index"])
        # the fields our parser derives instead of reading agree with the API's own
        assert example.max_token_index == record["maxValueTokenIndex"]
        assert max(example.values) == record["maxValue"]
    # strongest first in the API's answer already (so the stable sort keeps its order)
    assert [max(e.values) for e in ours] == sorted((max(e.values) for e in ours), reverse=True)


def test_the_official_client_cannot_read_the_response_as_the_api_sends_it():
    """Why saesteer keeps its own parser: `FeatureRequest.get`, given this response, fails
    on the explanations (no modelId), then on the activations (no `source`), then on the
    top examples' binContains -1. If a new client version reads it, this test says so."""
    from neuronpedia import FeatureRequest

    def get(data):
        request = FeatureRequest(api_key="offline")
        request.send_request = lambda **_: data
        return request.get("gemma-2-2b", "20-gemmascope-res-16k", 8837)

    with pytest.raises(KeyError, match="modelId"):
        get(RECORDED_FEATURE)
    ids = {"modelId": "gemma-2-2b", "source": "20-gemmascope-res-16k", "index": "8837"}
    data = RECORDED_FEATURE | {"explanations": [e | ids for e in RECORDED_FEATURE["explanations"]]}
    with pytest.raises(KeyError, match="source"):
        get(data)
    data["activations"] = [a | {"source": a["layer"]} for a in data["activations"]]
    with pytest.raises(ValueError, match="quantileFraction"):
        get(data)


def test_explanations_read_as_the_official_client_reads_them(tmp_path):
    from neuronpedia.np_explanation import Explanation

    api = settings("http://recorded.invalid", tmp_path, model_id="gemma-2-2b")
    api = settings_for(
        NeuronpediaSettings, **{**api.__dict__, "source": "{layer}-gemmascope-res-16k"}
    )
    path = api.cache_path(20, 8837)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(RECORDED_FEATURE))
    (entry,) = RECORDED_FEATURE["explanations"]
    # the API's explanation objects lack the ids the client's database type carries
    ids = {k: RECORDED_FEATURE[k] for k in ("modelId", "index")} | {"source": "20"}
    official = Explanation.from_np_db_json(entry | ids)
    assert feature_explanations(api, 20, [8837]) == {8837: official.text.strip()}


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else type(value).__name__


def test_the_fake_server_answers_with_every_recorded_field():
    """The loopback server's answers are the recorded response's shape, not the parser's
    assumptions: every top-level and per-example field, with the same JSON types."""
    fake = feature_json(5)
    assert set(fake) == set(RECORDED_FEATURE)
    recorded_example = RECORDED_FEATURE["activations"][1]
    for example in fake["activations"]:
        assert set(example) == set(recorded_example)
        for key, value in recorded_example.items():
            assert value is None or _json_type(example[key]) == _json_type(value), key
    assert isinstance(fake["index"], str) and isinstance(recorded_example["index"], str)
