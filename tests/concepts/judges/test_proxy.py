"""The offline proxy judge: its scales and ratings on a tiny model."""

import pytest

from saesteer.concepts.judges import Item
from saesteer.concepts.judges.proxy import ProxyJudge, ProxySettings, distinct_share, scale
from saesteer.settings import settings_for


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
    judge = ProxyJudge(settings_for(ProxySettings), model, tokenizer, "tiny")
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
    calibrated = ProxyJudge(
        settings_for(ProxySettings, concept_similarity=(0.0, 0.1)), model, tokenizer, "tiny"
    )
    assert calibrated.name != judge.name  # new anchors never reuse old cached ratings


def test_proxy_fluency_is_the_answers_perplexity_given_the_instruction(tiny_model):
    """Checked against the model's own loss over the answer's tokens, with BOS and the
    instruction as unscored context, one text at a time: a `paper` text (the instruction
    first) and a `chat` answer."""
    import math

    import torch

    model, tokenizer = tiny_model
    settings = settings_for(
        ProxySettings, fluency_perplexity=(1e6, 1.0), distinct_words=(0.0, 0.01)
    )
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
