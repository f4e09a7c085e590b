"""Judges of concept-steered answers, behind one interface (`base.Judge`), by kind."""

from __future__ import annotations

from saesteer.concepts.judges.base import ASPECTS, Item, Judge, JudgeCache, judge_items
from saesteer.errors import JudgeError
from saesteer.settings import settings_for


def _chat(settings: dict, model_info: dict, device: str, resources: str) -> Judge:
    from saesteer.concepts.judges.chat import ChatJudge, ChatSettings

    return ChatJudge(settings_for(ChatSettings, settings["chat"]))


def _proxy(settings: dict, model_info: dict, device: str, resources: str) -> Judge:
    from saesteer.concepts.judges.proxy import ProxyJudge, ProxySettings
    from saesteer.models import load_model

    model, tokenizer = load_model(model_info["path"], model_info["dtype"], device)
    proxy = settings_for(ProxySettings, settings["proxy"])
    return ProxyJudge(proxy, model, tokenizer, model_info["source"], resources)


JUDGES = {"chat": _chat, "proxy": _proxy}


def make_judge(settings: dict, model_info: dict, device: str, resources: str) -> Judge:
    """The judge of `settings` (the `concepts.judge` section); `model_info` is the run's
    model.json, the proxy's language model."""
    if settings["kind"] not in JUDGES:
        raise JudgeError(f"concepts.judge.kind: unknown judge {settings['kind']!r}")
    return JUDGES[settings["kind"]](settings, model_info, device, resources)


__all__ = [
    "ASPECTS",
    "JUDGES",
    "Item",
    "Judge",
    "JudgeCache",
    "JudgeError",
    "judge_items",
    "make_judge",
]
