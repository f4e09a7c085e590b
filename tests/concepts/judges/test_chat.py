"""The chat judge against a real OpenAI-compatible HTTP server on loopback."""

import logging

import pytest

from saesteer.concepts.judges.base import ASPECTS, Item, JudgeCache, judge_items
from saesteer.concepts.judges.chat import BEGIN, END, SYSTEM, ChatJudge, ChatSettings, parse_rating
from saesteer.errors import HttpError, JudgeError
from saesteer.settings import settings_for
from tests.fake_chat import PATH, FakeChat, Reply, response_text

KEY_ENV = "SAESTEER_TEST_CHAT_KEY"
SECRET = "sk-test-9b2e7a"


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)


@pytest.fixture
def server():
    with FakeChat(api_key=SECRET) as fake:
        yield fake


def judge(url: str, **overrides) -> ChatJudge:
    fields = {
        "base_url": url,
        "model": "judge-model",
        "api_key_env": KEY_ENV,
        "retries": 3,
        "backoff": 0.0,
        "timeout": 2.0,
        "concurrency": 3,
        "requests_per_minute": 0.0,
    }
    return ChatJudge(settings_for(ChatSettings, **{**fields, **overrides}))


ITEM = Item("the ocean", "Describe a city.", "A city by the ocean.")


def rate_one(j: ChatJudge, response: str = "ocean ocean", aspect: str = "concept") -> float:
    return j.rate(aspect, [j.prompt(aspect, ITEM)], [response])[0]


def test_settings_from_config_ignore_unknown_keys():
    s = settings_for(ChatSettings, {"model": "m", "requests_per_minute": 0, "comment": "x"})
    assert s.model == "m" and s.requests_per_minute == 0 and s.api_key_env == "OPENAI_API_KEY"
    assert s.url == "https://api.openai.com/v1/chat/completions"
    j = ChatJudge(settings_for(ChatSettings, {"base_url": "http://localhost:8000/v1/"}))
    assert j.name.startswith("chat:gpt-4o-mini@localhost:8000:") and j.proxy is False
    warmer = ChatJudge(
        settings_for(ChatSettings, {"base_url": "http://localhost:8000/v1/", "temperature": 0.7})
    )
    assert warmer.name != j.name  # other sampling never reuses cached ratings


def test_prompts_fill_in_the_rubric_without_the_response():
    j = judge("http://127.0.0.1:1/v1")
    concept, instruction, fluency = (j.prompt(a, ITEM) for a in ASPECTS)
    assert "the ocean" in concept and "Describe a city." not in concept
    assert "Describe a city." in instruction and "the ocean" not in instruction
    assert "the ocean" not in fluency and "Describe a city." not in fluency
    for text in (concept, instruction, fluency):
        assert "Rating: <0|1|2>" in text and ITEM.response not in text
    braces = Item("{instruction}", "{concept} {0}", "x")
    assert "{instruction}" in j.prompt("concept", braces)
    assert "{concept} {0}" in j.prompt("instruction", braces)


@pytest.mark.parametrize(
    ("reply", "rating"),
    [
        ("Fine.\nRating: 2", 2),
        ("Rating: 0", 0),
        ("**Rating:** [[1]]", 1),
        ("rating: 2/2.", 2),
        ("Rating: 2 at first... no.\nRating: <0>", 0),
        ("Rating: 1.5", None),
        ("Rating: 12", None),
        ("I give it a 2.", None),
        ("Rating: [[2]]", 2),
        ("The fragment is fluent.\n\nRating: [[2]]", 2),  # a reply of the paper's judge
        ("It is related. [[1]]", 1),
        ("[[2]] at first, then [[0]]", 0),
        ("Rating: 1, not [[2]]", 1),  # a rating line wins over a bare [[N]]
        ("[[3]]", None),
    ],
)
def test_parse_rating(reply, rating):
    assert parse_rating(reply) == rating


def test_ratings_come_back_in_input_order(server):
    j = judge(server.url, concurrency=4)
    responses = ["ocean", "no water", "ocean, ocean", "ocean ocean ocean", "", "an Ocean"] * 3
    prompts = [j.prompt("concept", ITEM)] * len(responses)
    assert j.rate("concept", prompts, responses) == [1.0, 0.0, 2.0, 2.0, 0.0, 1.0] * 3
    assert len(server.requests) == len(responses)


def test_the_request_carries_model_messages_and_bearer_key(server):
    j = judge(server.url, temperature=0.3, max_tokens=17)
    assert rate_one(j, "hello ocean") == 1.0
    (request,) = server.requests
    assert request.path == PATH
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.headers["User-Agent"].startswith("saesteer/")
    body = request.body
    assert body["model"] == "judge-model"
    assert body["temperature"] == 0.3 and body["max_tokens"] == 17
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM}
    assert user["role"] == "user"
    assert user["content"].startswith(j.prompt("concept", ITEM))
    assert f"{BEGIN}\nhello ocean\n{END}" in user["content"]
    assert response_text(user["content"]) == "hello ocean"


def test_429_and_5xx_are_retried_then_succeed(server):
    server.script = [
        Reply(429, b"{}", headers={"Retry-After": "0"}),
        Reply(500, b"oops"),
        Reply(503, b"busy"),
    ]
    assert rate_one(judge(server.url)) == 2.0
    assert len(server.requests) == 4


def test_retries_exhausted_name_the_url_not_the_key(server):
    server.script = [Reply(502, f"bad gateway {SECRET}".encode())] * 3
    with pytest.raises(JudgeError) as error:
        rate_one(judge(server.url, retries=2))
    message = str(error.value)
    assert f"concept: HTTP 502 from {server.url}/chat/completions after 2 retries" in message
    assert SECRET not in message and "bad gateway ***" in message
    assert len(server.requests) == 3  # the first try and 2 retries


def test_a_timeout_is_retried_then_reported(server):
    server.script = [Reply(delay=1.0), Reply()]
    assert rate_one(judge(server.url, timeout=0.3)) == 2.0
    assert len(server.requests) == 2
    server.script = [Reply(delay=1.0), Reply(delay=1.0)]
    with pytest.raises(JudgeError, match=r"concept: POST .*/chat/completions failed .*timed out"):
        rate_one(judge(server.url, timeout=0.3, retries=1))


def test_a_refused_connection_is_reported():
    with FakeChat() as gone:
        url = gone.url
    with pytest.raises(JudgeError, match=f"fluency: POST {url}/chat/completions failed after"):
        rate_one(judge(url, retries=1), aspect="fluency")


def test_a_rejected_key_names_the_variable_not_the_key(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-1234")
    with pytest.raises(HttpError, match=f"HTTP 401 .*\\${KEY_ENV} was rejected") as error:
        rate_one(judge(server.url))
    assert "sk-wrong-1234" not in str(error.value)
    assert len(server.requests) == 1  # 401 is not retried


def test_a_missing_key_fails_before_any_request(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(JudgeError, match=f"\\${KEY_ENV} is not set"):
        rate_one(judge(server.url))
    assert server.requests == []


def test_404_names_the_url_and_the_model(server):
    with pytest.raises(JudgeError, match=r"HTTP 404 from .*/v2/chat/completions.*'judge-model'"):
        rate_one(judge(server.url.replace("/v1", "/v2")))


def test_redirects_are_not_followed_so_the_key_stays(server):
    with FakeChat() as elsewhere:
        server.script = [Reply(307, b"", headers={"Location": f"{elsewhere.url}/chat"})]
        with pytest.raises(HttpError, match=f"HTTP 307 .* redirects to {elsewhere.url}/chat"):
            rate_one(judge(server.url))
    assert elsewhere.requests == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"choices": [', "instruction: malformed JSON from .*/chat/completions"),
        (b'{"error": "no"}', r"instruction: no choices\[0\].message.content in the reply from"),
        (b'{"choices": []}', r"no choices\[0\].message.content"),
        (b'{"choices": [{"message": {"content": null}}]}', r"no choices\[0\].message.content"),
    ],
)
def test_malformed_replies_raise(server, body, message):
    server.script = [Reply(200, body)]
    with pytest.raises(JudgeError, match=message):
        rate_one(judge(server.url), aspect="instruction")


def test_a_reply_without_a_rating_is_asked_again_once(server):
    server.script = [Reply(content="I cannot decide.")]
    assert rate_one(judge(server.url)) == 2.0
    assert len(server.requests) == 2
    first, second = (r.body["max_tokens"] for r in server.requests)
    assert second == 2 * first  # the second ask has more room
    server.requests.clear()
    server.script = [Reply(content="I cannot decide."), Reply(content="Still undecided, sorry.")]
    with pytest.raises(
        JudgeError, match=r"concept: no rating \('Rating: N'.*asked twice.*'Still undecided"
    ):
        rate_one(judge(server.url))
    assert len(server.requests) == 2


def test_judge_items_uses_the_cache(server, tmp_path, caplog):
    j = judge(server.url)
    items = [
        Item("the ocean", "Describe a city.", "A city by the ocean."),
        Item("the ocean", "Name a colour.", "Blue, like the ocean and the ocean floor."),
        Item("music", "Describe a city.", "A city of streets."),
    ]
    cache = JudgeCache(tmp_path, j)
    with caplog.at_level(logging.DEBUG):
        first = judge_items(j, items, cache)
    assert first["concept"] == [1.0, 2.0, 0.0]
    assert first["rated"] == 9 and first["cache_hits"] == 0
    assert len(server.requests) == 9

    again = judge_items(j, items, JudgeCache(tmp_path, j))
    assert again["cache_hits"] == 9 and again["rated"] == 0
    assert {a: again[a] for a in ASPECTS} == {a: first[a] for a in ASPECTS}
    assert len(server.requests) == 9  # nothing new was asked

    items[2] = Item("music", "Describe a city.", "A city of streets by the ocean.")
    changed = judge_items(j, items, JudgeCache(tmp_path, j))
    assert changed["cache_hits"] == 6 and changed["rated"] == 3
    assert changed["concept"] == [1.0, 2.0, 1.0]
    assert len(server.requests) == 12  # one per aspect for the changed response
    assert SECRET not in caplog.text
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and SECRET in p.read_text()]


def test_the_rate_limiter_spaces_request_starts(server):
    j = judge(server.url, concurrency=4, requests_per_minute=600.0)  # one per 0.1 s
    j.rate("fluency", [j.prompt("fluency", ITEM)] * 5, ["ocean"] * 5)
    starts = sorted(r.start for r in server.requests)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 5
    assert min(gaps) >= 0.05 and starts[-1] - starts[0] >= 0.35


def test_concurrency_is_bounded(server):
    server.delay = 0.1
    j = judge(server.url, concurrency=3)
    assert j.rate("concept", [j.prompt("concept", ITEM)] * 12, ["ocean"] * 12) == [1.0] * 12
    assert 2 <= server.max_in_flight <= 3


AXBENCH_LIKE = """\
concept: |
  [System]
  Judge whether the concept appears in the sentence fragment. Reply "Rating: [[score]]".

  [Concept Start]
  {concept}
  [Concept End]

  [Sentence Fragment Start]
  {sentence}
  [Sentence Fragment End]
instruction: |
  Is the fragment related to the instruction {instruction}? Fragment: {sentence}
fluency: |
  Rate the fluency of this fragment: {sentence}
system: ""
"""


def test_rubrics_from_a_file_place_the_response_and_drop_the_system(server, tmp_path):
    path = tmp_path / "rubrics.yaml"
    path.write_text(AXBENCH_LIKE)
    j = judge(server.url, rubrics=str(path))
    server.answer = lambda user: "Present. Rating: [[2]]" if "waves" in user else "[[0]]"
    braces = Item("the {instruction} ocean", "Describe a city.", "x")
    prompt = j.prompt("concept", braces)
    assert "the {instruction} ocean" in prompt and "{sentence}" not in prompt
    assert j.rate("concept", [prompt, prompt], ["waves {concept}", "tax forms"]) == [2.0, 0.0]
    (first,) = [r.body["messages"] for r in server.requests if "waves" in str(r.body)]
    assert [m["role"] for m in first] == ["user"]  # an empty system: no system message
    user = first[0]["content"]
    assert "[Concept Start]\nthe {instruction} ocean\n[Concept End]" in user
    assert "[Sentence Fragment Start]\nwaves {concept}\n[Sentence Fragment End]" in user
    assert BEGIN not in user
    assert j.name != judge(server.url).name  # another system message: other cached ratings
    assert j.prompt("fluency", ITEM) != judge(server.url).prompt("fluency", ITEM)


def test_rubrics_without_a_response_place_append_it_and_keep_a_system(server, tmp_path):
    path = tmp_path / "rubrics.yaml"
    path.write_text(
        "concept: 'About {concept}?'\ninstruction: 'Answers {instruction}?'\n"
        "fluency: 'Fluent?'\nsystem: 'Be strict.'\n"
    )
    j = judge(server.url, rubrics=str(path))
    assert rate_one(j, "ocean ocean") == 2.0
    system, user = server.requests[0].body["messages"]
    assert system == {"role": "system", "content": "Be strict."}
    assert user["content"] == f"About the ocean?\n\n{BEGIN}\nocean ocean\n{END}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such file"),
        ("- a list\n", "expected a mapping"),
        ("concept: 'c {concept}'\ninstruction: 'i {instruction}'\n", "'fluency' must be"),
        ("concept: 'no place'\ninstruction: '{instruction}'\nfluency: f\n", "no {concept}"),
        ("concept: '{concept}'\ninstruction: 'none'\nfluency: f\n", "no {instruction}"),
        (
            "concept: '{concept} {sentence} {response}'\ninstruction: '{instruction}'\n"
            "fluency: f\n",
            "places the response twice",
        ),
        ("concept: '{concept}'\ninstruction: '{instruction}'\nfluency: f\nrubric: x\n", "unknown"),
        ("concept: '{concept}'\ninstruction: '{instruction}'\nfluency: f\nsystem: 3\n", "system"),
        ("concept: [\n", "unreadable"),
    ],
)
def test_bad_rubric_files_are_named(tmp_path, text, message):
    path = tmp_path / "rubrics.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(JudgeError, match="concepts.judge.chat.rubrics") as error:
        judge("http://127.0.0.1:1/v1", rubrics=str(path))
    assert message in str(error.value) and str(path) in str(error.value)
