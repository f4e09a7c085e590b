"""A feature page's values: each of a layer's features with every stage's numbers, its
ranks in the layer, its logit-lens tokens, contexts, charts and steered text, as the plain
values (strings, numbers, coordinates) that `feature.html.j2` shows. Each page is its own
small file under `explorer/layers/<layer>/` (a run with thousands of features is
thousands of files of tens of kB, never one file of hundreds of MB)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import polars as pl

from saesteer.explorer.charts import activation_histogram, steering_plot
from saesteer.explorer.steered import (
    concept_answers,
    continuations,
    gen_success_ids,
    success_by_prefix,
)
from saesteer.explorer.tokens import contexts, peak_tokens
from saesteer.input_score import TokenMapper


@dataclass(frozen=True)
class ExplorerSettings:
    SECTIONS: ClassVar = ("explorer",)
    contexts: int  # top activating contexts shown per feature
    prefixes: int  # prefixes whose continuations are shown at every factor
    logit_lens_tokens: int  # logit-lens tokens listed per feature


def rank_in_layer(scores: pl.DataFrame, column: str) -> dict[int, tuple[int, int, int]]:
    """Feature -> (best rank, worst rank, features ranked) by `column`, highest first
    (1 = best; tied features share the span of ranks they cover); features without the
    score are not ranked."""
    scored = scores.drop_nulls(column).filter(pl.col(column).is_not_nan())
    best = scored[column].rank(method="min", descending=True).cast(pl.Int64)
    worst = scored[column].rank(method="max", descending=True).cast(pl.Int64)
    return {
        f: (b, w, scored.height) for f, b, w in zip(scored["feature"], best, worst, strict=True)
    }


def _by_feature(frame: pl.DataFrame | None) -> dict[int, pl.DataFrame]:
    if frame is None or frame.is_empty():
        return {}
    return {key[0]: part for key, part in frame.partition_by("feature", as_dict=True).items()}


@dataclass
class LayerTables:
    """One layer's artifacts, as read by the layer's page job."""

    features: pl.DataFrame
    logit_lens: pl.DataFrame
    input_scores: pl.DataFrame
    output_scores: pl.DataFrame
    activations: pl.DataFrame
    generations: pl.DataFrame
    gen_metrics: pl.DataFrame
    best_factors: pl.DataFrame
    densities: pl.DataFrame | None = None
    negative_logits: pl.DataFrame | None = None
    concepts: pl.DataFrame | None = None
    concept_ratings: pl.DataFrame | None = None


def _one(rows: pl.DataFrame | None, column: str):
    """The first value of `column`; None without rows or without the column (a table made
    before the column existed)."""
    if rows is None or rows.is_empty() or column not in rows.columns:
        return None
    return rows[column][0]


def feature_pages(
    layer: int, tables: LayerTables, decoder, settings: ExplorerSettings, run: str
) -> Iterable[tuple[str, dict]]:
    """(file name in the layer's folder, template values) for each of the layer's features,
    in feature order. Links are relative to the page, which sits two folders down."""
    features = tables.features["feature"].to_list()
    mapper = TokenMapper(decoder) if decoder is not None else None  # one per layer
    input_rank = rank_in_layer(tables.input_scores, "input_score")
    output_rank = rank_in_layer(tables.output_scores, "output_score")
    parts = {
        field.name: _by_feature(getattr(tables, field.name))
        for field in dataclasses.fields(tables)
        if field.name != "features"
    }
    for i, feature in enumerate(features):
        part = {name: rows.get(feature) for name, rows in parts.items()}
        best = _one(part["best_factors"], "best_factor")
        lens = part["logit_lens"]
        examples = part["activations"]
        metrics = part["gen_metrics"]
        generations = part["generations"]
        ratings = part["concept_ratings"]
        top_k = _one(part["input_scores"], "top_k")
        # the tokens the input score reads: its top_k (when scored), at least the setting's
        listed = max(settings.logit_lens_tokens, top_k or 0)
        lens = None if lens is None else lens.sort("rank").head(listed)
        hits = None if lens is None or top_k is None else set(lens["token_id"][:top_k])
        n_examples = _one(part["input_scores"], "n_examples")
        counted_ids = None if part["logit_lens"] is None else gen_success_ids(part["logit_lens"])
        peaks = Counter() if examples is None else peak_tokens(examples, mapper, n_examples)
        yield (
            f"{feature}.html",
            {
                "run": run,
                "layer": layer,
                "feature": feature,
                "root": "../../",
                "previous": f"{features[i - 1]}.html" if i else None,
                "next": f"{features[i + 1]}.html" if i + 1 < len(features) else None,
                "description": _one(part["concepts"], "concept"),
                "input_score": _one(part["input_scores"], "input_score"),
                "input_rank": input_rank.get(feature),
                "input_score_chance": _one(part["input_scores"], "input_score_chance"),
                "n_examples": n_examples,
                "n_hits": _one(part["input_scores"], "n_hits"),
                "input_top_k": top_k,
                "output_score": _one(part["output_scores"], "output_score"),
                "output_rank": output_rank.get(feature),
                "best_factor": best,
                "effective_factor": _one(part["best_factors"], "effective_factor"),
                "density": _one(part["densities"], "density"),
                "density_source": _one(part["densities"], "density_source"),
                "histogram": activation_histogram(
                    _one(part["densities"], "histogram"), _one(part["densities"], "histogram_edges")
                ),
                "live": None
                if part["input_scores"] is None
                else _one(part["input_scores"], "input_score") is not None,
                "best_gen_success_20": _one(part["best_factors"], "gen_success_20"),
                "best_perplexity": _one(part["best_factors"], "perplexity"),
                "logit_lens": []
                if lens is None
                else [
                    {
                        **t,
                        "counted": top_k is not None and t["rank"] < top_k,
                        "peaks": peaks.get(t["token_id"], 0),
                    }
                    for t in lens.to_dicts()
                ],
                "negative_logits": []
                if part["negative_logits"] is None
                else part["negative_logits"].sort("rank").head(listed).to_dicts(),
                # raw logits: logit_lens.parquet files made before the column have none
                "logit_lens_logits": lens is not None
                and "logit" in lens.columns
                and lens["logit"].null_count() < lens.height,
                "contexts": []
                if examples is None
                else contexts(examples, decoder, settings.contexts, hits),
                "continuations": []
                if generations is None
                else continuations(
                    generations,
                    best,
                    settings.prefixes,
                    decoder,
                    counted_ids,
                ),
                "success_by_prefix": []
                if generations is None
                else success_by_prefix(generations, best, decoder, counted_ids),
                "plot": None if metrics is None else steering_plot(metrics, best),
                "concept": None if ratings is None else concept_answers(ratings),
            },
        )
