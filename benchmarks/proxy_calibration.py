"""How well the offline proxy judge (`saesteer.concepts.judges.proxy`) agrees with the LLM judge.

    cd /work/main && .venv/bin/python benchmarks/proxy_calibration.py \\
        /tmp/released_concepts.parquet --out /tmp/proxy_calibration.json

Input: the released ratings of "SAEs Are Good for Steering" (Claude 3.7 Sonnet with the
AxBench templates, 0/1/2, on texts steered with Gemma-2-9B-it), as imported by
`saesteer import-released-concepts`; one row per (concept, test answer). For each answer,
with the embedded SmolLM2-135M-Instruct as the run's model, the signals of the proxy:

- instruction: cosine similarity of the instruction and `after(instruction, text)`;
- fluency: perplexity of `after(instruction, text)` given BOS and the instruction as plain
  text, capped by the distinct-word share of `after(instruction, text)`;
- before this change (fluency only): the whole text's perplexity alone after BOS, and the
  whole text's distinct-word share, with the old anchors (BEFORE).

Signals are cached next to `--out` (`<out stem>.signals.parquet`); `--recompute` redoes
them (two perplexity passes over ~3,600 texts: about half an hour on 2 CPU cores) with
the calls `ProxyJudge._fluency` makes. The first cache computed the fluency perplexity by
subtracting the instruction's NLL from the whole text's: the same tokens `_fluency` scores
wherever the text's tokens are the instruction's then the answer's; the others (136 of
3,645) are redone once with `_fluency`'s calls, and the cache marked (its attrs). Ratings
rebuilt from the signals are then compared with `judge.rate` of the current code on a few
answers of each kind (`check`: max difference, rounded ratings that differ).

Reported for layer 31 (held out), layer 20 and both: Spearman of the continuous rating with
the LLM's, and exact agreement (the rating rounded half up equals the LLM's), for (a) the
defaults of `ProxySettings`, (b) anchors fitted on layer 20 only (grid search maximizing
exact agreement, ties broken by Spearman, anchors at least MIN_SPREAD apart: the defaults
are this fit, rounded), (c) the proxy before this change; and the exact agreement of
always answering 2. The concept aspect is not measured: the release's concept-rating
cache is not available offline here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr
from tqdm import tqdm

from saesteer.concepts.judges.base import Item
from saesteer.concepts.judges.proxy import ProxyJudge, ProxySettings, after, distinct_share
from saesteer.settings import settings_for

MODEL = "smollm2-135m-instruct"
FIT_LAYER = 20
SPLITS = {"layer31": [31], "layer20": [20], "all": [20, 31]}
FLUENCY = ("perplexity_given_instruction", "distinct_after")  # the current signals
BEFORE_FLUENCY = ("perplexity", "distinct")  # the whole text, alone after BOS
BEFORE = settings_for(
    ProxySettings,
    instruction_similarity=(0.1, 0.6),
    fluency_perplexity=(60.0, 4.0),
    distinct_words=(0.2, 0.5),
)
SIMILARITY_GRID = np.round(np.arange(-0.2, 0.9001, 0.01), 3)
PERPLEXITY_GRID = np.round(np.geomspace(1.5, 2000.0, 36), 3)
DISTINCT_GRID = np.round(np.arange(0.0, 1.0001, 0.025), 3)
# Exact agreement alone prefers near-step anchors (a narrow "1" band); these gaps keep a
# ramp, which Spearman and averages over answers see.
MIN_SPREAD = {"similarity": 0.2, "perplexity_ratio": 2.0, "distinct": 0.1}
CHUNK = 256  # texts per `perplexities` call, for progress
CODE_PATH = "ProxyJudge._fluency calls"  # how the cache's fluency perplexity was computed


def explode(path: Path, limit: int | None) -> pd.DataFrame:
    """One row per (concept, test answer) with a text and at least one LLM rating."""
    concepts = pd.read_parquet(path)
    if limit:
        concepts = concepts.groupby("layer").head(limit)
    rows = []
    for c in concepts[concepts["test_texts"].notna()].itertuples(index=False):
        none = [None] * len(c.test_texts)  # a concept's ratings may be missing
        inst, flu = c.test_instruction_ratings, c.test_fluency_ratings
        lists = (c.test_instructions, c.test_texts, none if inst is None else inst)
        for i, row in enumerate(zip(*lists, none if flu is None else flu, strict=True)):
            rows.append((int(c.layer), int(c.feature), i, *row))
    ratings = ["instruction_rating", "fluency_rating"]
    columns = ["layer", "feature", "answer", "instruction", "text", *ratings]
    answers = pd.DataFrame(rows, columns=columns).astype({r: float for r in ratings})
    keep = answers["text"].notna() & answers[ratings].notna().any(axis=1)
    return answers[keep].reset_index(drop=True)


def perplexity(judge: ProxyJudge, contexts, tokens, desc: str) -> list[float]:
    """`perplexities(model, contexts, tokens, False, batch)` in chunks (for progress), texts
    sharing a context kept together; NaN where nothing is scored."""
    from saesteer.gen_metrics import perplexities

    scored = [i for i in range(len(tokens)) if contexts[i] and tokens[i]]
    scored.sort(key=lambda i: (contexts[i], len(tokens[i])))
    result = [math.nan] * len(tokens)
    for start in tqdm(range(0, len(scored), CHUNK), desc=desc, unit="chunk"):
        rows = scored[start : start + CHUNK]
        context, scored_tokens = [contexts[i] for i in rows], [tokens[i] for i in rows]
        found = perplexities(judge.model, context, scored_tokens, False, judge.settings.batch_size)
        for i, value in zip(rows, found, strict=True):
            result[i] = math.nan if value is None else value
    return result


def fluency_inputs(tokenizer, instructions, texts):
    """The contexts and scored tokens of `ProxyJudge._fluency`, built as it builds them."""
    from saesteer.prompts import encode_prompt

    answers = [after(i, t) for i, t in zip(instructions, texts, strict=True)]
    contexts = [encode_prompt(tokenizer, i) for i in instructions]
    tokens = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
    for i, context in enumerate(contexts):
        if not context and tokens[i]:
            contexts[i], tokens[i] = tokens[i][:1], tokens[i][1:]
    return contexts, tokens


def fluency_perplexity(judge: ProxyJudge, instructions: list[str], texts: list[str]):
    return perplexity(judge, *fluency_inputs(judge.tokenizer, instructions, texts), "fluency")


def same_tokens(tokenizer, instructions, texts) -> np.ndarray:
    """Whether a text's tokens are its instruction's then its answer's (`after`), each
    tokenized alone as `_fluency` does."""

    def ids(strings):
        return [tokenizer(x, add_special_tokens=False)["input_ids"] for x in strings]

    afters = [after(i, t) for i, t in zip(instructions, texts, strict=True)]
    pieces = zip(ids(instructions), ids(afters), ids(texts), strict=True)
    return np.array([head + tail == whole for head, tail, whole in pieces])


def compute_signals(answers: pd.DataFrame, judge: ProxyJudge) -> pd.DataFrame:
    from saesteer.prompts import encode_prompt

    instructions, texts = answers["instruction"].tolist(), answers["text"].tolist()
    afters = [after(i, t) for i, t in zip(instructions, texts, strict=True)]
    signals = answers.copy()
    similarity = []
    for s in tqdm(range(0, len(texts), CHUNK), desc="similarity", unit="chunk"):
        similarity += judge.similarities(instructions[s : s + CHUNK], afters[s : s + CHUNK])
    signals["similarity"] = similarity
    signals[FLUENCY[0]] = fluency_perplexity(judge, instructions, texts)
    signals[FLUENCY[1]] = [distinct_share(a) for a in afters]
    ids = [encode_prompt(judge.tokenizer, t) for t in texts]
    signals[BEFORE_FLUENCY[0]] = perplexity(
        judge, [i[:1] for i in ids], [i[1:] for i in ids], "before"
    )
    signals[BEFORE_FLUENCY[1]] = [distinct_share(t) for t in texts]
    signals.attrs = {FLUENCY[0]: CODE_PATH}
    return signals


def load_judge(resources: Path, batch_size: int) -> ProxyJudge:
    from saesteer.models import EmbeddedSource, load_model

    model, tokenizer = load_model(EmbeddedSource(MODEL).resolve(resources), device="cpu")
    return ProxyJudge(
        settings_for(ProxySettings, batch_size=batch_size), model, tokenizer, MODEL, resources
    )


def load_or_compute(answers, judge, cache: Path, recompute: bool) -> tuple[pd.DataFrame, bool]:
    keys = ["layer", "feature", "answer", "text"]
    if cache.is_file() and not recompute:
        cached = pd.read_parquet(cache)
        same = len(cached) == len(answers) and cached[keys].equals(answers[keys])
        if same and all(c in cached for c in ("similarity", *FLUENCY, *BEFORE_FLUENCY)):
            print(f"signals read from {cache} (--recompute to redo)", file=sys.stderr)
            if cached.attrs.get(FLUENCY[0]) != CODE_PATH:
                repair(cached, judge, cache)
            return cached, True
    signals = compute_signals(answers, judge)
    signals.to_parquet(cache, index=False)  # attrs travel in the Parquet metadata
    print(f"signals cached to {cache}", file=sys.stderr)
    return signals, False


def repair(signals: pd.DataFrame, judge: ProxyJudge, cache: Path) -> None:
    """Redo, with `_fluency`'s calls, the fluency perplexity the first cache computed by
    NLL subtraction where that scored other tokens than `_fluency` does."""
    instructions, texts = signals["instruction"].tolist(), signals["text"].tolist()
    redo = np.flatnonzero(~same_tokens(judge.tokenizer, instructions, texts))
    print(f"fluency perplexity of {len(redo)} answers by the code path", file=sys.stderr)
    found = fluency_perplexity(judge, [instructions[i] for i in redo], [texts[i] for i in redo])
    signals.loc[signals.index[redo], FLUENCY[0]] = found
    signals.attrs = {FLUENCY[0]: CODE_PATH, "repaired": len(redo)}
    signals.to_parquet(cache, index=False)


def check_against_judge(judge: ProxyJudge, signals: pd.DataFrame, n: int = 6) -> dict:
    """|judge.rate - rating rebuilt from the signals| (max, and how many rounded ratings
    differ) on `n` answers whose tokens split as `_fluency`'s and `n` whose do not (see
    `same_tokens`), taken where the rebuilt ratings are not clipped, so a change shows."""
    inst, flu = rate_instruction(signals, judge.settings), rate_fluency(signals, judge.settings)
    ramp = (inst > 0) & (inst < 2) & (flu > 0) & (flu < 2)
    same = same_tokens(judge.tokenizer, signals["instruction"], signals["text"])
    out = {}
    for group, mask in (("same tokens", same), ("other tokens", ~same)):
        rows = np.flatnonzero(mask & ramp) if (mask & ramp).sum() >= n else np.flatnonzero(mask)
        out[group] = {"of": int(mask.sum())}
        if not len(rows):
            continue
        rows = np.unique(rows[np.linspace(0, len(rows) - 1, n).astype(int)])
        sample, out[group]["n"] = signals.iloc[rows], len(rows)
        items = [Item("", i, t) for i, t in zip(sample["instruction"], sample["text"], strict=True)]
        for aspect, ours in (("instruction", inst[rows]), ("fluency", flu[rows])):
            prompts = [judge.prompt(aspect, item) for item in items]
            official = np.asarray(judge.rate(aspect, prompts, sample["text"].tolist()))
            out[group][aspect] = {
                "max_abs_diff": float(np.max(np.abs(official - ours), initial=0.0)),
                "rounded_differs": int(np.sum(rounded(official) != rounded(ours))),
            }
    return out


def vscale(value, zero, two):
    """`scale` on arrays; anchors may be arrays broadcasting against `value`."""
    return np.clip((value - zero) / (two - zero), 0.0, 1.0) * 2.0


def rate_instruction(signals, settings):
    return vscale(signals["similarity"].to_numpy(float), *settings.instruction_similarity)


def rate_fluency(signals, settings, columns=FLUENCY):
    """As `ProxyJudge._fluency`: the lower of both scaled signals; 0 without a perplexity."""
    log_ppl = np.log(signals[columns[0]].to_numpy(float))
    by_ppl = np.nan_to_num(vscale(log_ppl, *np.log(settings.fluency_perplexity)), nan=0.0)
    return np.minimum(by_ppl, vscale(signals[columns[1]].to_numpy(float), *settings.distinct_words))


def rounded(x):
    return np.floor(np.asarray(x) + 0.5)  # 0.5 -> 1, 1.5 -> 2


def row_spearman(ratings: np.ndarray, llm: np.ndarray) -> np.ndarray:
    """Spearman of each row of `ratings` with `llm` (average ranks for ties)."""
    r = rankdata(ratings, axis=1)
    r -= r.mean(1, keepdims=True)
    y = rankdata(llm) - rankdata(llm).mean()
    denom = np.sqrt((r**2).sum(1) * (y**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (r @ y) / denom, -np.inf)


def pairs(grid, increasing: bool, spread: float) -> np.ndarray:
    """(zero, two) anchors: two - zero >= spread if `increasing`, else zero / two >= spread."""
    if increasing:
        return np.array([(a, b) for a in grid for b in grid if b > a and b - a >= spread - 1e-9])
    return np.array([(a, b) for a in grid for b in grid if b < a and a / b >= spread - 1e-9])


def best(exact: np.ndarray, rate, llm: np.ndarray) -> tuple:
    """Index of the candidate of highest exact agreement, ties broken by Spearman;
    `rate(*index)`: that candidate's ratings."""
    ties = np.argwhere(exact >= exact.max() - 1e-12)
    return tuple(ties[np.argmax(row_spearman(np.stack([rate(*t) for t in ties]), llm))])


def fit(signals: pd.DataFrame) -> ProxySettings:
    """Anchors maximizing exact agreement on FIT_LAYER (ties: Spearman), MIN_SPREAD apart."""
    part = signals[signals["layer"] == FIT_LAYER]
    inst = part[part["instruction_rating"].notna()]
    llm = inst["instruction_rating"].to_numpy()
    sim = pairs(SIMILARITY_GRID, True, MIN_SPREAD["similarity"])
    ratings = vscale(inst["similarity"].to_numpy()[None, :], sim[:, :1], sim[:, 1:])
    (i,) = best((rounded(ratings) == llm).mean(1), lambda i: ratings[i], llm)

    flu = part[part["fluency_rating"].notna()]
    llm = flu["fluency_rating"].to_numpy()
    ppl = pairs(PERPLEXITY_GRID, False, MIN_SPREAD["perplexity_ratio"])
    dis = pairs(DISTINCT_GRID, True, MIN_SPREAD["distinct"])
    log_ppl = np.log(flu[FLUENCY[0]].to_numpy())
    by_dis = vscale(flu[FLUENCY[1]].to_numpy()[None, :], dis[:, :1], dis[:, 1:])
    exact = np.zeros((len(ppl), len(dis)))
    for p, anchors in enumerate(np.log(ppl)):
        by_ppl = np.nan_to_num(vscale(log_ppl, *anchors), nan=0.0)
        exact[p] = (rounded(np.minimum(by_ppl, by_dis)) == llm).mean(1)

    def settings(p, d):
        return settings_for(
            ProxySettings,
            instruction_similarity=tuple(sim[i]),
            fluency_perplexity=tuple(ppl[p]),
            distinct_words=tuple(dis[d]),
        )

    return settings(*best(exact, lambda p, d: rate_fluency(flu, settings(p, d)), llm))


def evaluate(signals: pd.DataFrame, proxies: dict) -> dict:
    """{aspect: {split: {n, always_2, name: {spearman, exact}}}}; `proxies` maps a name to
    (settings, fluency signal columns)."""
    out = {}
    for aspect in ("instruction", "fluency"):
        out[aspect] = {}
        for split, layers in SPLITS.items():
            part = signals[signals["layer"].isin(layers) & signals[f"{aspect}_rating"].notna()]
            llm = part[f"{aspect}_rating"].to_numpy()
            result = {"n": len(llm), "always_2": float(np.mean(llm == 2))}
            for name, (settings, columns) in proxies.items():
                if aspect == "instruction":
                    rating = rate_instruction(part, settings)
                else:
                    rating = rate_fluency(part, settings, columns)
                varied = np.ptp(rating) > 0 and np.ptp(llm) > 0
                rho = float(spearmanr(rating, llm).statistic) if varied else math.nan
                result[name] = {"spearman": rho, "exact": float(np.mean(rounded(rating) == llm))}
            out[aspect][split] = result
    return out


def table(results: dict, names: list[str]) -> str:
    head = " | ".join(f"{n} ρ | {n} exact" for n in names)
    lines = [f"| aspect | split | n | {head} | always 2 exact |", "|---" * (4 + 2 * len(names))]
    lines[-1] += "|"
    for aspect, splits in results.items():
        for split, r in splits.items():
            cells = " | ".join(f"{r[n]['spearman']:.3f} | {r[n]['exact']:.3f}" for n in names)
            lines.append(f"| {aspect} | {split} | {r['n']} | {cells} | {r['always_2']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("concepts", type=Path, help="Parquet of import-released-concepts")
    parser.add_argument("--out", type=Path, required=True, help="JSON written here")
    parser.add_argument("--resources", type=Path, default=Path("resources"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--recompute", action="store_true", help="ignore the signal cache")
    parser.add_argument("--limit", type=int, help="only the first N concepts of each layer")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    answers = explode(args.concepts, args.limit)
    judge = load_judge(args.resources, args.batch_size)
    cache = args.out.with_name(f"{args.out.stem}.signals.parquet")
    signals, cached = load_or_compute(answers, judge, cache, args.recompute)
    check = check_against_judge(judge, signals)
    print(f"check against judge.rate: {check}", file=sys.stderr)

    fitted = fit(signals)
    proxies = {
        "defaults": (settings_for(ProxySettings), FLUENCY),
        "L20 fit": (fitted, FLUENCY),
        "before": (BEFORE, BEFORE_FLUENCY),
    }
    results = evaluate(signals, proxies)
    report = table(results, list(proxies))
    print(report)

    def anchors(s: ProxySettings) -> dict:
        names = ("instruction_similarity", "fluency_perplexity", "distinct_words")
        return {k: [round(float(x), 3) for x in getattr(s, k)] for k in names}

    for name, (settings, _) in proxies.items():
        print(f"{name}: {anchors(settings)}")
    result = {
        "command": " ".join(["python", *sys.argv]),
        "input": str(args.concepts),
        "signals_cache": {"path": str(cache), "read": cached, **signals.attrs},
        "model": MODEL,
        "anchors": {name: anchors(settings) for name, (settings, _) in proxies.items()},
        "fit": {"layer": FIT_LAYER, "min_spread": MIN_SPREAD},
        "exact_agreement": "share of answers whose rating rounded half up equals the LLM's",
        "check": check,
        "results": results,
        "seconds": time.perf_counter() - start,
        "table": report,
    }
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out} in {result['seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
