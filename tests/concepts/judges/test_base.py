"""The judges' interface, the rating cache and the registry."""

import pytest

from saesteer.concepts.judges import Item, Judge, JudgeCache, judge_items
from saesteer.errors import JudgeError


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
    from saesteer.concepts.judges import JUDGES, make_judge
    from saesteer.concepts.judges.chat import ChatJudge

    assert set(JUDGES) == {"chat", "proxy"}
    chat = make_judge({"kind": "chat", "chat": {"model": "m"}}, {}, "cpu", "resources")
    assert isinstance(chat, ChatJudge) and chat.name.startswith("chat:m@")
    with pytest.raises(JudgeError, match="unknown judge 'oracle'"):
        make_judge({"kind": "oracle"}, {}, "cpu", "resources")
