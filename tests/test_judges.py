"""The judge cache and the offline proxy judge."""

import pytest

from saesteer.judges import Item, Judge, JudgeCache, JudgeError, judge_items
from saesteer.judges.proxy import ProxyJudge, ProxySettings, distinct_share, scale


class Counting(Judge):
    """Rates by response length, counting every rating it is asked for."""

    name = "counting:v1"
    proxy = True

    def __init__(self, bad: float | None = None):
        self.asked: list[tuple[str, str, str]] = []
        self.bad = bad

    def prompt(self, aspect, item):
        return {"concept": item.concept, "instruction": item.instruction}.get(aspect, "")

    def rate(self, aspect, prompts, responses):
        self.asked += [(aspect, p, r) for p, r in zip(prompts, responses, strict=True)]
        return [self.bad if self.bad is not None else min(len(r), 2) / 1.0 for r in responses]


ITEMS = [Item("sea", "say hi", "x"), Item("sea", "say hi", "xyz"), Item("sea", "say hi", "x")]


def test_cache_serves_reruns_and_duplicates_are_rated_once(tmp_path):
    judge = Counting()
    first = judge_items(judge, ITEMS, JudgeCache(tmp_path, judge))
    assert first["concept"] == [1.0, 2.0, 1.0]
    assert len(judge.asked) == 3 * 2  # two distinct responses, three aspects
    assert (first["cache_hits"], first["rated"]) == (0, 6)

    again = Counting()
    second = judge_items(again, ITEMS, JudgeCache(tmp_path, again))
    assert again.asked == [] and second["cache_hits"] == 9 and second["rated"] == 0
    assert second["fluency"] == first["fluency"]

    changed = Counting()
    judge_items(changed, [*ITEMS, Item("sky", "say hi", "x")], JudgeCache(tmp_path, changed))
    assert changed.asked == [("concept", "sky", "x")]  # only the new (prompt, response) pair


def test_cache_is_per_judge_and_survives_a_bad_entry(tmp_path):
    judge = Counting()
    cache = JudgeCache(tmp_path, judge)
    judge_items(judge, ITEMS[:1], cache)
    key = cache.key("concept", "sea", "x")
    cache.path(key).write_text("{truncated")
    other = Counting()
    other.name = "counting:v2"
    judge_items(other, ITEMS[:1], JudgeCache(tmp_path, other))
    assert len(other.asked) == 3  # another judge never reads v1's ratings
    judge_items(judge, ITEMS[:1], cache)
    assert judge.asked[-1] == ("concept", "sea", "x")  # the bad entry is rated again


def test_out_of_range_ratings_are_refused(tmp_path):
    with pytest.raises(JudgeError, match="not in"):
        judge_items(Counting(bad=3.0), ITEMS, None)


def test_proxy_scales():
    assert scale(0.05, 0.05, 0.45) == 0.0
    assert scale(0.25, 0.05, 0.45) == pytest.approx(1.0)
    assert scale(0.9, 0.05, 0.45) == 2.0
    assert scale(50.0, 60.0, 4.0) == pytest.approx(2 * 10 / 56)  # a falling anchor pair
    assert distinct_share("the cat the cat") == 0.5
    assert distinct_share("") == 0.0


def test_proxy_judge_rates_what_it_should(tiny_model):
    """The real embedder: an answer about the concept rates higher on concept than one
    that is not; a repetitive answer rates 0 on fluency."""
    model, tokenizer = tiny_model
    judge = ProxyJudge(ProxySettings(), model, tokenizer, "tiny")
    assert judge.proxy and judge.name.startswith("proxy:")
    about = "The ocean is deep and full of fish, waves and salty sea water."
    other = "My tax forms are due on Monday and the printer is broken."
    ask = "Write about your week."
    items = [Item("the ocean and the sea", ask, t) for t in (about, other)]
    concept = judge.rate("concept", [judge.prompt("concept", i) for i in items], [about, other])
    assert concept[0] > concept[1]
    # A `paper` text begins with its instruction: only what follows it is compared.
    paper = Item("the ocean and the sea", ask, ask + " " + about)
    for aspect in ("concept", "instruction"):
        whole = judge.rate(aspect, [judge.prompt(aspect, paper)], [paper.response])
        alone = judge.rate(aspect, [judge.prompt(aspect, items[0])], [" " + about])
        assert whole == pytest.approx(alone)
    fluency = judge.rate("fluency", ["", ""], ["w1 w1 w1 w1 w1 w1", ""])
    assert fluency == [0.0, 0.0]
    calibrated = ProxyJudge(ProxySettings(concept_similarity=(0.0, 0.1)), model, tokenizer, "tiny")
    assert calibrated.name != judge.name  # new anchors never reuse old cached ratings


def test_proxy_fluency_is_the_answers_perplexity_given_the_instruction(tiny_model):
    """Checked against the model's own loss over the answer's tokens, with BOS and the
    instruction as unscored context, one text at a time: a `paper` text (the instruction
    first) and a `chat` answer."""
    import math

    import torch

    model, tokenizer = tiny_model
    settings = ProxySettings(fluency_perplexity=(1e6, 1.0), distinct_words=(0.0, 0.01))
    judge = ProxyJudge(settings, model, tokenizer, "tiny")
    items = [
        Item("c", "w1 w2", "w1 w2 w3 w4"),
        Item("c", "w7 w8", "w9 w8 w7 w30 w31 w5"),
        Item("c", "w4", "w4 w5"),
    ]
    got = judge.rate(
        "fluency", [judge.prompt("fluency", i) for i in items], [i.response for i in items]
    )
    for item, rating in zip(items, got, strict=True):
        context = [tokenizer.bos_token_id, *tokenizer(item.instruction)["input_ids"]]
        answer = item.response.removeprefix(item.instruction).split()
        ids = torch.tensor([context + tokenizer.convert_tokens_to_ids(answer)])
        labels = ids.clone()
        labels[0, : len(context)] = -100
        with torch.no_grad():
            loss = model(ids, labels=labels).loss.item()
        assert rating == pytest.approx(scale(loss, math.log(1e6), 0.0), rel=1e-4)


def test_a_failure_keeps_the_chunks_already_rated(tmp_path):
    class Failing(Counting):
        def rate(self, aspect, prompts, responses):
            if len(self.asked) >= 2:
                raise JudgeError("server gone")
            return super().rate(aspect, prompts, responses)

    items = [Item("sea", "hi", "a" * n) for n in range(1, 6)]
    judge = Failing()
    with pytest.raises(JudgeError, match="server gone"):
        judge_items(judge, items, JudgeCache(tmp_path, judge), chunk=2)
    again = Counting()
    result = judge_items(again, items, JudgeCache(tmp_path, again), chunk=2)
    assert result["cache_hits"] == 2  # the first chunk survived the failure


def test_judges_come_from_a_registry():
    from saesteer.judges import JUDGES, make_judge
    from saesteer.judges.chat import ChatJudge

    assert set(JUDGES) == {"chat", "proxy"}
    chat = make_judge({"kind": "chat", "chat": {"model": "m"}}, {}, "cpu", "resources")
    assert isinstance(chat, ChatJudge) and chat.name.startswith("chat:m@")
    with pytest.raises(JudgeError, match="unknown judge 'oracle'"):
        make_judge({"kind": "oracle"}, {}, "cpu", "resources")
