"""Judges of concept-steered answers, behind one interface (`base.Judge`), by kind."""

from saesteer.judges.base import ASPECTS, Item, Judge, JudgeCache, JudgeError, judge_items

__all__ = ["ASPECTS", "Item", "Judge", "JudgeCache", "JudgeError", "judge_items"]
