"""Fault cases of issue 16: secrets in cut error bodies, bad judge-cache ratings, and
non-finite or out-of-range numbers in imported JSON."""

import gzip
import json
import logging

import polars as pl
import pytest

from saesteer.activations import import_bulk_export
from saesteer.cli import main
from saesteer.concepts.judges.base import Item, Judge, JudgeCache, judge_items
from saesteer.concepts.judges.chat import ChatJudge, ChatSettings
from saesteer.errors import (
    ActivationsError,
    DataFileError,
    JudgeError,
    SaesteerError,
)
from saesteer.features import FEATURES_SCHEMA, features_frame
from saesteer.io import read_json, write_parquet
from saesteer.neuronpedia import NeuronpediaSettings, feature_explanations, fetch_features
from saesteer.released import read_released_best_factors, read_released_generations
from saesteer.settings import settings_for
from tests.fake_chat import FakeChat, Reply
from tests.fake_neuronpedia import MODEL_ID, SOURCE, FakeNeuronpedia, feature_json
from tests.fake_neuronpedia import Reply as NpReply

# --- 1. The chat judge's API key never leaks, even cut in part --------------------------

KEY_ENV = "SAESTEER_TEST_FAULT_KEY"
KEY = "sk-SECRET-7f3a9c2e41"


def leaked(text: str) -> bool:
    """Whether any prefix of the key of 4 characters or more is in `text`."""
    return any(KEY[:n] in text for n in range(4, len(KEY) + 1))


def crossing(cut: int) -> list[int]:
    """Offsets of the key from wholly before the cut to wholly after it."""
    return list(range(cut - len(KEY), cut + 1))


@pytest.fixture
def chat(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with FakeChat(api_key=KEY) as fake:
        yield fake


def rate_once(url: str) -> float:
    settings = settings_for(
        ChatSettings,
        base_url=url,
        api_key_env=KEY_ENV,
        retries=0,
        backoff=0.0,
        timeout=2.0,
        concurrency=1,
        requests_per_minute=0.0,
    )
    judge = ChatJudge(settings)
    item = Item("the ocean", "Describe a city.", "ocean")
    return judge.rate("concept", [judge.prompt("concept", item)], [item.response])[0]


def assert_no_key(error, caplog, capsys) -> None:
    out, err = capsys.readouterr()
    for text in (str(error.value), caplog.text, out, err):
        assert not leaked(text)


@pytest.mark.parametrize("offset", crossing(300))
def test_an_error_body_cut_through_the_key_leaks_none_of_it(chat, offset, caplog, capsys):
    """Secrets: an HTTP error body is cut at 300 characters after the key is scrubbed."""
    chat.script = [Reply(400, ("x" * offset + KEY + "y" * 40).encode())]
    with caplog.at_level(logging.DEBUG), pytest.raises(JudgeError) as error:
        rate_once(chat.url)
    assert "HTTP 400 from" in str(error.value) and "xxxx" in str(error.value)
    assert_no_key(error, caplog, capsys)


@pytest.mark.parametrize("offset", crossing(200))
def test_a_reply_without_content_cut_through_the_key_leaks_none_of_it(chat, offset, caplog, capsys):
    """Secrets: a reply without choices is quoted at 200 characters after the key is scrubbed."""
    head = '{"error": "'
    body = head + "x" * (offset - len(head)) + KEY + "y" * 40 + '"}'
    chat.script = [Reply(200, body.encode())]
    with caplog.at_level(logging.DEBUG), pytest.raises(JudgeError) as error:
        rate_once(chat.url)
    assert "no choices[0].message.content" in str(error.value)
    assert_no_key(error, caplog, capsys)


@pytest.mark.parametrize("offset", crossing(200))
def test_a_reply_without_a_rating_cut_through_the_key_leaks_none_of_it(
    chat, offset, caplog, capsys
):
    """Secrets: a reply without a rating is logged and quoted at 200 characters, scrubbed first."""
    content = "x" * offset + KEY + " and no verdict"
    chat.script = [Reply(content=content), Reply(content=content)]
    with caplog.at_level(logging.DEBUG), pytest.raises(JudgeError) as error:
        rate_once(chat.url)
    assert "asked twice" in str(error.value)
    assert "no rating in reply" in caplog.text  # the debug line was written, scrubbed
    assert_no_key(error, caplog, capsys)


# --- 2. Judge-cache entries outside [0, 2] are rated again ------------------------------


class ByLength(Judge):
    """Rates 1 per character, at most 2, recording what it is asked."""

    name = "bylength:v1"
    proxy = True

    def __init__(self):
        self.asked: list[tuple[str, str, str]] = []

    def prompt(self, aspect, item):
        return {"concept": item.concept, "instruction": item.instruction}.get(aspect, "")

    def rate(self, aspect, prompts, responses):
        self.asked += [(aspect, p, r) for p, r in zip(prompts, responses, strict=True)]
        return [float(min(len(r), 2)) for r in responses]


ITEMS = [Item("sea", "say hi", "x"), Item("sea", "say hi", "xyz")]


@pytest.mark.parametrize(
    "bad", ["99", "-1", "2.5", "NaN", "Infinity", "-Infinity", "1e999", "true", "false", '"1"']
)
def test_a_bad_cached_rating_is_rated_again_and_overwritten(tmp_path, caplog, bad):
    """Judge-cache values: a rating not a finite number in [0, 2] is re-rated and replaced."""
    first = ByLength()
    cache = JudgeCache(tmp_path, first)
    good = judge_items(first, ITEMS, cache)
    path = cache.path(cache.key("concept", "sea", "x"))
    path.write_text(f'{{"judge": "bylength:v1", "aspect": "concept", "rating": {bad}}}')

    judge = ByLength()
    with caplog.at_level(logging.WARNING):
        result = judge_items(judge, ITEMS, JudgeCache(tmp_path, judge))
    assert judge.asked == [("concept", "sea", "x")]  # only the bad entry is asked again
    assert result["concept"] == good["concept"] == [1.0, 2.0]
    assert (result["rated"], result["cache_hits"]) == (1, 5)
    assert str(path) in caplog.text and "rating it again" in caplog.text
    assert json.loads(path.read_text())["rating"] == 1.0

    rerun = ByLength()
    again = judge_items(rerun, ITEMS, JudgeCache(tmp_path, rerun))
    assert rerun.asked == [] and again["concept"] == [1.0, 2.0]


# --- 3. Imported JSON holds only finite numbers, in range ------------------------------


def test_read_json_refuses_nan_naming_the_file(tmp_path):
    """Imported JSON: read_json refuses NaN and names the file."""
    path = tmp_path / "model.json"
    path.write_text('{"n_layers": NaN}')
    with pytest.raises(ValueError, match=r"model.json: not valid JSON \(NaN is not a JSON number"):
        read_json(path)
    path.write_text('{"n_layers": 4}')
    assert read_json(path) == {"n_layers": 4}


HUGE = "1" + "0" * 400  # a valid JSON int past a float's range


@pytest.mark.parametrize(
    ("factor", "message"),
    [
        ("-1", "feature 2_5: factor -1 is not a finite number >= 0"),
        ("-0.5", "feature 2_5: factor -0.5 is not a finite number >= 0"),
        ("NaN", r"not valid JSON \(NaN is not a JSON number"),
        ("Infinity", r"not valid JSON \(Infinity is not a JSON number"),
        ("-Infinity", r"not valid JSON \(-Infinity is not a JSON number"),
        ("1e999", r"not valid JSON \(1e999 is not a finite number"),
        (HUGE, f"feature 2_5: factor {HUGE} is not a finite number"),
    ],
    ids=["-1", "-0.5", "NaN", "Infinity", "-Infinity", "1e999", "huge-int"],
)
def test_a_bad_released_best_factor_names_the_file_and_feature(tmp_path, factor, message):
    """Imported JSON: a best factor that is not finite and >= 0 is refused, naming it."""
    path = tmp_path / "best.json"
    path.write_text(f'{{"2_4": 0.4, "2_5": {factor}}}')
    with pytest.raises(SaesteerError, match=message) as error:  # DataFileError for bad JSON
        read_released_best_factors(path, 2)
    assert str(path) in str(error.value)
    path.write_text('{"2_4": 0.4, "2_5": 0.0}')  # a fixed file reads again
    assert read_released_best_factors(path, 2).rows() == [(4, 0.4), (5, 0.0)]


def test_released_generations_with_nan_name_the_file(tmp_path, tiny_model):
    """Imported JSON: a released generations file holding NaN is refused, naming it."""
    path = tmp_path / "gen_2.0.json"
    path.write_text('{"2_5": ["w1 w2"], "score": NaN}')
    template = str(tmp_path / "gen_{factor}.json")
    with pytest.raises(DataFileError, match=r"gen_2.0.json: not valid JSON \(NaN"):
        read_released_generations(template, 2, [5], [2.0], ["w1 w2"], tiny_model[1])


LAYER = 3


def np_settings(url: str, cache) -> NeuronpediaSettings:
    return settings_for(
        NeuronpediaSettings,
        model_id=MODEL_ID,
        source=SOURCE,
        base_url=url,
        api_key_env="SAESTEER_TEST_NP_KEY",
        concurrency=2,
        retries=0,
        backoff=0.0,
        timeout=2.0,
        cache_dir=str(cache),
    )


@pytest.fixture
def neuronpedia(monkeypatch):
    monkeypatch.delenv("SAESTEER_TEST_NP_KEY", raising=False)
    with FakeNeuronpedia() as fake:
        yield fake


def activation_body(values: str) -> bytes:
    return f'{{"activations": [{{"tokens": ["a", "b"], "values": {values}}}]}}'.encode()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("[0.5, NaN]", r"feature 8: malformed JSON from .*/8: not valid JSON \(NaN is not"),
        ("[Infinity, 0.5]", r"feature 8: malformed JSON from .*/8: .*Infinity is not a JSON"),
        ("[0.5, -1e999]", r"feature 8: malformed JSON from .*/8: .*-1e999 is not a finite"),
        (f"[0.5, {HUGE}]", r"feature 8 \(.*/8\): activations\[0\]: 'values' .*values\[1\] is 1"),
    ],
    ids=["NaN", "Infinity", "-1e999", "huge-int"],
)
def test_a_non_finite_neuronpedia_response_is_refused_and_not_cached(
    neuronpedia, tmp_path, values, message
):
    """Imported JSON: a Neuronpedia response with a non-finite activation names the URL."""
    api = np_settings(neuronpedia.url, tmp_path)
    neuronpedia.script[8] = [NpReply(200, activation_body(values))]
    with pytest.raises(DataFileError if "malformed" in message else ActivationsError) as error:
        fetch_features(api, LAYER, [8])
    assert error.match(message)
    assert not list(tmp_path.rglob("*.json")) and not list(tmp_path.rglob("*.tmp"))
    neuronpedia.script.clear()  # the server mends: a rerun downloads and caches it
    assert len(fetch_features(api, LAYER, [8])[8]) == 12
    assert api.cache_path(LAYER, 8).is_file()


@pytest.mark.parametrize(
    ("cached", "message"),
    [
        (activation_body("[NaN, 0.5]"), r"cached .*/5.json: not valid JSON \(NaN is not"),
        (activation_body("[0.5, 1e999]"), r"cached .*/5.json: not valid JSON \(1e999 is not"),
        (activation_body(f"[{HUGE}, 0.5]"), r"feature 5 \(.*/5.json\): .*values\[0\] is 1"),
    ],
    ids=["NaN", "1e999", "huge-int"],
)
def test_a_non_finite_cached_feature_names_the_cache_file(neuronpedia, tmp_path, cached, message):
    """Imported JSON: a Neuronpedia cache file with a non-finite value is an error naming it."""
    api = np_settings(neuronpedia.url, tmp_path)
    path = api.cache_path(LAYER, 5)
    path.parent.mkdir(parents=True)
    path.write_bytes(cached)
    with pytest.raises(DataFileError if "valid JSON" in message else ActivationsError) as error:
        fetch_features(api, LAYER, [5])
    assert error.match(message)
    assert not neuronpedia.requests  # a cached feature is not fetched again
    path.unlink()  # the rerun after removing the bad file downloads it afresh
    assert len(fetch_features(api, LAYER, [5])[5]) == 12


def test_a_non_finite_cached_explanation_file_names_the_cache_file(neuronpedia, tmp_path):
    """Imported JSON: the explanations reader refuses a cache file holding Infinity."""
    api = np_settings(neuronpedia.url, tmp_path)
    path = api.cache_path(LAYER, 6)
    path.parent.mkdir(parents=True)
    data = feature_json(6) | {"explanations": [{"description": "sea"}]}
    text = json.dumps(data)
    path.write_text(json.dumps(data | {"frac_nonzero": float("inf")}))  # json writes Infinity
    assert "Infinity" in path.read_text()
    with pytest.raises(DataFileError, match=f"feature 6: cached {path}: not valid JSON"):
        feature_explanations(api, LAYER, [6])
    path.write_text(text)
    assert feature_explanations(api, LAYER, [6]) == {6: "sea"}


def export_line(index, values) -> str:
    tokens = [f"t{i}" for i in range(len(values))] if isinstance(values, list) else ["t0", "t1"]
    values = json.dumps(values) if isinstance(values, list) else values
    index = json.dumps(index)
    tokens = json.dumps(tokens)
    return f'{{"layer": "3-res", "index": {index}, "tokens": {tokens}, "values": {values}}}\n'


def write_export(path, lines) -> None:
    with gzip.open(path, "wt") as f:
        f.writelines(lines)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (export_line("1", "[0.5, NaN]"), r"not valid JSON \(NaN is not a JSON number"),
        (export_line("1", "[Infinity, 0.5]"), r"not valid JSON \(Infinity is not a JSON"),
        (export_line("1", "[0.5, 1e999]"), r"not valid JSON \(1e999 is not a finite number"),
        (export_line("1", f"[0.5, {HUGE}]"), r"'values' must be .* finite numbers; values\[1\]"),
        (export_line("-1", [1.0, 2.0]), r"'index' '-1' is not a feature index"),
        (export_line(-1, [1.0, 2.0]), r"'index' -1 is not a feature index"),
        (export_line(1.5, [1.0, 2.0]), r"'index' 1.5 is not a feature index"),
        (export_line(True, [1.0, 2.0]), r"'index' True is not a feature index"),
    ],
    ids=[
        "NaN",
        "Infinity",
        "1e999",
        "huge-int",
        "index-str-neg",
        "index-neg",
        "index-1.5",
        "index-true",
    ],
)
def test_a_bad_bulk_export_line_names_the_file_and_line(tmp_path, line, message):
    """Imported JSON: a bulk-export line with a non-finite value or a bad index is refused."""
    path = tmp_path / "batch-0.jsonl.gz"
    write_export(path, [export_line("1", [1.0, 3.0]), line])
    with pytest.raises(SaesteerError, match=f"batch-0.jsonl.gz:2: {message}"):  # or DataFileError
        import_bulk_export([path], "3-res", [1], 10)


def test_a_bulk_export_with_nan_writes_no_activations_and_a_rerun_recovers(tmp_path, caplog):
    """Imported JSON: the activations command fails on a NaN line, leaves nothing, reruns."""
    write_parquet(features_frame(LAYER, [1]), tmp_path / "features.parquet", FEATURES_SCHEMA)
    folder = tmp_path / "export"
    folder.mkdir()
    good = export_line("1", [1.0, 3.0])
    write_export(folder / "batch-0.jsonl.gz", [good, export_line("1", "[NaN, 0.5]")])
    bulk = {"files": str(folder / "*.gz"), "source": "{layer}-res"}
    settings = {"source": "bulk", "n_examples": 10, "bulk": bulk}
    out = tmp_path / "activations.parquet"
    argv = [
        *("activations", "--layer", str(LAYER), "--features", str(tmp_path / "features.parquet")),
        *("--settings", json.dumps(settings)),
        *("--out", str(out), "--out-densities", str(tmp_path / "densities.parquet")),
    ]
    with caplog.at_level(logging.ERROR):
        assert main(argv) == 2
    assert "batch-0.jsonl.gz:2: not valid JSON (NaN is not a JSON number)" in caplog.text
    assert not out.exists() and not list(tmp_path.glob(".activations*"))
    write_export(folder / "batch-0.jsonl.gz", [good, export_line("1", [0.5, 2.0])])
    assert main(argv) == 0
    assert pl.read_parquet(out)["max_value"].to_list() == [3.0, 2.0]
