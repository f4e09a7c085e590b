"""Concept steering scores (the paper's Table 1): a concept's score (by default the
harmonic mean of its three mean judge ratings), the factor each concept's steering uses
(chosen on its selection instructions), and the mean score over concepts on the test
instructions, for the SAE with and without an output-score filter and the prompting and
DiffMean baselines, or for the SAE from the paper's released ratings."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from saesteer.concepts import CONCEPT_GENERATIONS_SCHEMA
from saesteer.errors import ConfigError

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
    raise ValueError(f"concepts.aggregation: {aggregation!r} is not one of {AGGREGATIONS}")


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
        raise ValueError(f"concepts.aggregation: {aggregation!r} is not one of {AGGREGATIONS}")
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
    scores: pl.DataFrame, thresholds: Sequence[float], judge: str, proxy: bool
) -> pl.DataFrame:
    """Table 1 per layer: prompting, the SAE at each output-score threshold (highest
    first), the SAE with no filter, DiffMean (the methods `scores` has); each the mean over
    its concepts with a score."""
    rows = [("Prompting", "prompting", None)]
    rows += [(f"SAE, output score >= {t:g}", "sae", t) for t in sorted(thresholds, reverse=True)]
    rows += [("SAE, no filter", "sae", None), ("DiffMean", "diffmean", None)]
    rows = [row for row in rows if row[1] in set(scores["method"])]
    frames = []
    for layer in sorted(scores["layer"].unique()):
        at = scores.filter(pl.col("layer") == layer)
        for label, method, threshold in rows:
            kept = at.filter((pl.col("method") == method) & pl.col("score").is_not_null())
            if threshold is not None:
                kept = kept.filter(pl.col("output_score") >= threshold)
            frames.append(
                pl.DataFrame(
                    {
                        "layer": [layer],
                        "row": [label],
                        "method": [method],
                        "min_output_score": [threshold],
                        "n_concepts": [kept.height],
                        "score": [kept["score"].mean()],
                        **{c: [kept[c].mean()] for c in ASPECT_COLUMNS},
                        "judge": [judge],
                        "judge_proxy": [proxy],
                    },
                    schema=CONCEPT_TABLE_SCHEMA,
                )
            )
    return pl.concat(frames) if frames else pl.DataFrame(schema=CONCEPT_TABLE_SCHEMA)


def table_html(table: pl.DataFrame, aggregation: str) -> str:
    """Table 1 as an HTML fragment: one row per method, one column per layer."""
    layers = sorted(table["layer"].unique())
    proxy = bool(table["judge_proxy"].any()) if table.height else False
    judge = table["judge"][0] if table.height else "?"
    head = "".join(f"<th>layer {layer}</th>" for layer in layers)
    body = []
    for label in table["row"].unique(maintain_order=True):
        cells = []
        for layer in layers:
            row = table.filter((pl.col("row") == label) & (pl.col("layer") == layer))
            score, n = row["score"][0], row["n_concepts"][0]
            cells.append(f"<td>{'n/a' if score is None else f'{score:.3f}'} (n={n})</td>")
        body.append(f"<tr><th>{label}</th>{''.join(cells)}</tr>")
    if proxy:
        note = (
            "<p><strong>Proxy judge</strong>: ratings come from the offline proxy "
            f"({judge}), not an LLM judge; compare rows with each other, not with the "
            "paper's numbers.</p>"
        )
    elif judge == RELEASED_JUDGE:
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
        + f"<p>Score per concept: {how}; each cell is the mean over concepts (n).</p>"
        + f"<table><tr><th>method</th>{head}</tr>{''.join(body)}</table>"
    )
