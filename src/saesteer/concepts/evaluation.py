"""Concept steering scores (the paper's Table 1): a concept's score (by default the
harmonic mean of its three mean judge ratings), the factor each concept's steering uses
(chosen on its selection instructions), and the mean score over concepts on the test
instructions, for the SAE with and without an output-score filter and the prompting and
DiffMean baselines, or for the SAE from the paper's released ratings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from saesteer.concepts import CONCEPT_GENERATIONS_SCHEMA
from saesteer.errors import ConfigError
from saesteer.stats import BootstrapSettings, interval

RATINGS_SCHEMA = {
    **CONCEPT_GENERATIONS_SCHEMA,
    "concept": pl.Utf8,
    "concept_rating": pl.Float64,
    "instruction_rating": pl.Float64,
    "fluency_rating": pl.Float64,
    "harmonic": pl.Float64,  # harmonic mean of the three ratings of this response
    "judge": pl.Utf8,
    "judge_proxy": pl.Boolean,  # True: the offline proxy judge, not an LLM
}

CONCEPT_SCORES_SCHEMA = {
    "layer": pl.Int32,
    "method": pl.Utf8,
    "feature": pl.Int64,
    "factor": pl.Float64,  # chosen on the selection instructions
    "select_score": pl.Float64,
    "concept_rating": pl.Float64,  # test instructions, mean
    "instruction_rating": pl.Float64,
    "fluency_rating": pl.Float64,
    "score": pl.Float64,  # test instructions, by `aggregation`
    "n_test": pl.Int32,
    "output_score": pl.Float64,
}

CONCEPT_TABLE_SCHEMA = {
    "layer": pl.Int32,
    "row": pl.Utf8,  # e.g. "SAE, output score >= 0.1"
    "method": pl.Utf8,
    "min_output_score": pl.Float64,  # null: no filter
    "n_concepts": pl.Int32,
    "score": pl.Float64,  # mean over concepts
    "score_low": pl.Float64,  # its 95% bootstrap interval over concepts
    "score_high": pl.Float64,
    # An SAE row with a filter: its score minus the unfiltered SAE's, both on the same
    # resamples of the layer's SAE concepts, and that difference's interval.
    "gain_over_unfiltered": pl.Float64,
    "gain_low": pl.Float64,
    "gain_high": pl.Float64,
    "concept_rating": pl.Float64,
    "instruction_rating": pl.Float64,
    "fluency_rating": pl.Float64,
    "judge": pl.Utf8,
    "judge_proxy": pl.Boolean,
}

ASPECT_COLUMNS = ("concept_rating", "instruction_rating", "fluency_rating")
AGGREGATIONS = ("per_response", "of_means")


def harmonic(a: pl.Expr, b: pl.Expr, c: pl.Expr) -> pl.Expr:
    """Harmonic mean of three non-negative ratings; 0 when any of them is 0."""
    return (
        pl.when((a > 0) & (b > 0) & (c > 0))
        .then(3.0 / (1.0 / a + 1.0 / b + 1.0 / c))
        .otherwise(0.0)
    )


def _score(aggregation: str) -> pl.Expr:
    """A group's score: the harmonic mean of the three mean ratings (`of_means`, the
    paper's), or the mean of each response's harmonic mean (`per_response`)."""
    if aggregation == "per_response":
        return pl.col("harmonic").mean()
    if aggregation == "of_means":
        return harmonic(*(pl.col(c).mean() for c in ASPECT_COLUMNS))
    raise ConfigError(f"concepts.aggregation: {aggregation!r} is not one of {AGGREGATIONS}")


def with_harmonic(ratings: pl.DataFrame) -> pl.DataFrame:
    return ratings.with_columns(harmonic=harmonic(*(pl.col(c) for c in ASPECT_COLUMNS)))


def select_factors(ratings: pl.DataFrame, aggregation: str) -> pl.DataFrame:
    """(layer, method, feature) -> the factor with the best score on the selection
    instructions; ties go to the smaller factor. Prompting has one factor (0, unsteered)."""
    keys = ["layer", "method", "feature"]
    steered = (
        ratings.filter(pl.col("split") == "select")
        .group_by([*keys, "factor"])
        .agg(select_score=_score(aggregation))
        .sort([*keys, "select_score", "factor"], descending=[False, False, False, True, False])
        .group_by(keys, maintain_order=True)
        .first()
    )
    prompting = (
        ratings.filter(pl.col("method") == "prompting")
        .select(keys)
        .unique()
        .with_columns(factor=pl.lit(0.0), select_score=pl.lit(None, pl.Float64))
    )
    return pl.concat([steered.filter(pl.col("method") != "prompting"), prompting], how="diagonal")


def concept_scores(
    ratings: pl.DataFrame, output_scores: pl.DataFrame, aggregation: str
) -> pl.DataFrame:
    """Each (method, concept)'s test ratings at its chosen factor, with the feature's
    output score."""
    chosen = select_factors(ratings, aggregation)
    test = ratings.filter(pl.col("split") == "test").join(
        chosen, on=["layer", "method", "feature", "factor"]
    )
    scores = test.group_by(["layer", "method", "feature", "factor", "select_score"]).agg(
        *(pl.col(c).mean() for c in ASPECT_COLUMNS),
        score=_score(aggregation),
        n_test=pl.len(),
    )
    return (
        scores.join(
            output_scores.select("layer", "feature", "output_score"),
            on=["layer", "feature"],
            how="left",
        )
        .sort("layer", "method", "feature")
        .select(list(CONCEPT_SCORES_SCHEMA))
        .cast(CONCEPT_SCORES_SCHEMA)
    )


RELEASED_JUDGE = "released: the paper's LLM judge (Claude 3.7 Sonnet, AxBench templates)"


def released_scores(
    released: pl.DataFrame, output_scores: pl.DataFrame, layers: Sequence[int], aggregation: str
) -> pl.DataFrame:
    """The SAE rows of CONCEPT_SCORES_SCHEMA from the paper's released answers and ratings
    (`import-released-concepts`): each concept at its released best factor, with the run's
    output score. A concept missing a rating aspect has a null score."""
    missing = sorted(set(layers) - set(released["layer"].unique()))
    if missing:
        raise ConfigError(f"concepts.layers: the release has no concepts at layers {missing}")
    frame = released.filter(pl.col("layer").is_in(list(layers)))
    lists = [f"test_{c}s" for c in ASPECT_COLUMNS]
    if aggregation == "per_response":
        # Each answer's harmonic mean over the answers rated on all three aspects; an
        # aspect without ratings (a null list) leaves none.
        n = frame.select(pl.max_horizontal(pl.col(c).list.len() for c in lists)).max().item()
        empty = pl.lit([None] * (n or 0), dtype=pl.List(pl.Float64))
        per = (
            frame.select("layer", "feature", *(pl.col(c).fill_null(empty) for c in lists))
            .explode(lists)
            .drop_nulls()
            .with_columns(harmonic=harmonic(*(pl.col(c) for c in lists)))
            .group_by("layer", "feature")
            .agg(score=pl.col("harmonic").mean())
        )
        frame = frame.drop("score").join(per, on=["layer", "feature"], how="left")
    elif aggregation != "of_means":
        raise ConfigError(f"concepts.aggregation: {aggregation!r} is not one of {AGGREGATIONS}")
    return (
        frame.with_columns(
            method=pl.lit("sae"), factor="best_factor", select_score=pl.lit(None, pl.Float64)
        )
        .join(
            output_scores.select("layer", "feature", "output_score"),
            on=["layer", "feature"],
            how="left",
        )
        .sort("layer", "feature")
        .select(list(CONCEPT_SCORES_SCHEMA))
        .cast(CONCEPT_SCORES_SCHEMA)
    )


def table_rows(
    scores: pl.DataFrame,
    thresholds: Sequence[float],
    judge: str,
    proxy: bool,
    bootstrap: BootstrapSettings | None = None,
) -> pl.DataFrame:
    """Table 1 per layer: prompting, the SAE at each output-score threshold (highest
    first), the SAE with no filter, DiffMean (the methods `scores` has); each the mean over
    its concepts with a score, with bootstrap intervals over concepts when `bootstrap`."""
    rows = [("Prompting", "prompting", None)]
    rows += [(f"SAE, output score >= {t:g}", "sae", t) for t in sorted(thresholds, reverse=True)]
    rows += [("SAE, no filter", "sae", None), ("DiffMean", "diffmean", None)]
    rows = [row for row in rows if row[1] in set(scores["method"])]
    frames = []
    for layer in sorted(scores["layer"].unique()):
        at = scores.filter(pl.col("layer") == layer)
        for label, method, threshold in rows:
            group = at.filter((pl.col("method") == method) & pl.col("score").is_not_null())
            kept = group
            if threshold is not None:
                kept = kept.filter(pl.col("output_score") >= threshold)
            intervals = _row_intervals(group, threshold, bootstrap)
            frames.append(
                pl.DataFrame(
                    {
                        "layer": [layer],
                        "row": [label],
                        "method": [method],
                        "min_output_score": [threshold],
                        "n_concepts": [kept.height],
                        "score": [kept["score"].mean()],
                        **{name: [value] for name, value in intervals.items()},
                        **{c: [kept[c].mean()] for c in ASPECT_COLUMNS},
                        "judge": [judge],
                        "judge_proxy": [proxy],
                    },
                    schema=CONCEPT_TABLE_SCHEMA,
                )
            )
    return pl.concat(frames) if frames else pl.DataFrame(schema=CONCEPT_TABLE_SCHEMA)


def _row_intervals(
    group: pl.DataFrame, threshold: float | None, bootstrap: BootstrapSettings | None
) -> dict:
    """The row's score interval over its concepts and, with a threshold, its gain over the
    unfiltered row on the same resamples of the method's concepts."""
    out = dict.fromkeys(
        ("score_low", "score_high", "gain_over_unfiltered", "gain_low", "gain_high")
    )
    if bootstrap is None:
        return out
    score = group["score"].to_numpy().astype(float)
    output = group["output_score"].fill_null(-np.inf).to_numpy().astype(float)
    kept = output >= threshold if threshold is not None else np.ones(len(score), bool)

    def mean_kept(i):
        return score[i][kept[i]].mean() if kept[i].any() else None

    est = interval(mean_kept, np.zeros(len(score)), bootstrap, n=int(kept.sum()))
    if int(kept.sum()) >= 2:
        out["score_low"], out["score_high"] = est.low, est.high
    if threshold is not None:

        def gain(i):
            mean = mean_kept(i)
            return None if mean is None else mean - score[i].mean()

        est = interval(gain, np.zeros(len(score)), bootstrap, n=int(kept.sum()))
        out["gain_over_unfiltered"] = est.value
        if int(kept.sum()) >= 2:
            out["gain_low"], out["gain_high"] = est.low, est.high
    return out


def _cell(row: dict) -> str:
    """'0.327 [0.21, 0.44] (n=3); gain +0.05 [-0.1, 0.2]', escaped-safe (numbers only)."""

    def num(value):
        return "n/a" if value is None else f"{value:.3g}"

    text = "n/a" if row["score"] is None else f"{row['score']:.3f}"
    if row["score_low"] is not None:
        text += f" [{num(row['score_low'])}, {num(row['score_high'])}]"
    text += f" (n={row['n_concepts']})"
    if row["gain_over_unfiltered"] is not None:
        text += f"; gain {row['gain_over_unfiltered']:+.3g}"
        if row["gain_low"] is not None:
            text += f" [{num(row['gain_low'])}, {num(row['gain_high'])}]"
    return text


def table_html(table: pl.DataFrame, aggregation: str) -> str:
    """Table 1 as an HTML fragment: one row per method, one column per layer. Every text
    from the config or the data (the judge's model name, row labels) is escaped."""
    from html import escape

    layers = sorted(table["layer"].unique())
    proxy = bool(table["judge_proxy"].any()) if table.height else False
    judge = escape(table["judge"][0]) if table.height else "?"
    head = "".join(f"<th>layer {layer}</th>" for layer in layers)
    body = []
    for label in table["row"].unique(maintain_order=True):
        cells = []
        for layer in layers:
            row = table.filter((pl.col("row") == label) & (pl.col("layer") == layer))
            cells.append(f"<td>{_cell(row.row(0, named=True))}</td>")
        body.append(f"<tr><th>{escape(label)}</th>{''.join(cells)}</tr>")
    if proxy:
        note = (
            "<p><strong>Proxy judge</strong>: ratings come from the offline proxy "
            f"({judge}), not an LLM judge; compare rows with each other, not with the "
            "paper's numbers.</p>"
        )
    elif judge == escape(RELEASED_JUDGE):
        note = (
            "<p>Answers and ratings are the paper's own release (each concept at its "
            "released best factor, rated by the paper's LLM judge); the output scores "
            "that filter the rows are this run's.</p>"
        )
    else:
        note = f"<p>Judge: {judge}.</p>"
    how = {
        "per_response": "each response's harmonic mean of its concept, instruction and "
        "fluency ratings (0-2), averaged over the test instructions",
        "of_means": "the harmonic mean of the concept, instruction and fluency ratings "
        "(0-2), each averaged over the test instructions",
    }[aggregation]
    return (
        "<h2>Concept steering</h2>"
        + note
        + f"<p>Score per concept: {how}; each cell is the mean over concepts "
        "[its 95% bootstrap interval over concepts] (n concepts); a filtered SAE row adds "
        "its gain over the unfiltered SAE [interval]. A row of fewer than 2 concepts has no "
        "interval: one concept cannot carry a conclusion.</p>"
        + f"<table><tr><th>method</th>{head}</tr>{''.join(body)}</table>"
    )
