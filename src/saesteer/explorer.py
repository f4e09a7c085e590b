"""The feature explorer: one self-contained HTML page per scored feature and one sortable,
filterable table of all of them, rendered from the run's Parquet with the Jinja2 templates
in `saesteer/templates/`. Each page is its own small file under `explorer/layers/<layer>/`
(a run with thousands of features is thousands of files of tens of kB, never one file of
hundreds of MB), linked from the Snakemake report's front page and captions.

This module turns tables into the plain values the templates show (strings, numbers,
coordinates); the templates hold all markup."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import polars as pl

from saesteer.config import GEN_SUCCESS_TOP_K
from saesteer.input_score import TokenMapper
from saesteer.io import is_finite_number

# Highlight shades of a token by its activation over the feature's largest: 1 (faint) to 8.
SHADES = 8
# The steering plot's canvas (SVG user units).
PLOT_WIDTH, PLOT_HEIGHT = 460, 230
PLOT_MARGIN = {"left": 58, "right": 70, "top": 14, "bottom": 38}


@dataclass(frozen=True)
class ExplorerSettings:
    SECTIONS: ClassVar = ("explorer",)
    contexts: int  # top activating contexts shown per feature
    prefixes: int  # prefixes whose continuations are shown at every factor
    logit_lens_tokens: int  # logit-lens tokens listed per feature


def page_path(layer: int, feature: int) -> str:
    """A feature's page, relative to the explorer's folder."""
    return f"layers/{layer}/{feature}.html"


def number(value, digits: int = 3) -> str:
    """A table cell: a dash for missing values, floats to `digits` significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def environment():
    """The templates, HTML-escaped by default; an undefined name is an error, not blank."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("saesteer", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = number
    env.filters["rank_text"] = rank_text
    return env


def token_decoder(model_json: str | Path):
    """The run's tokenizer as a `tokenizers.Tokenizer`, which decodes what transformers'
    fast tokenizer decodes (it is that tokenizer's backend). Read from the model folder's
    tokenizer.json when there is one, without importing transformers (~3 s a job)."""
    from tokenizers import Tokenizer

    from saesteer.io import read_json
    from saesteer.models import load_tokenizer

    path = Path(read_json(model_json)["path"]) / "tokenizer.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    return load_tokenizer(model_json).backend_tokenizer


def token_pieces(decoder, ids: Sequence[int] | None, tokens: Sequence[str]) -> list[str]:
    """Each token as the text it adds to the context. Decoding tokens one by one loses what
    a decoder strips at a text's start (SentencePiece's leading space) and splits a
    character whose bytes span tokens, so each piece is what the token adds to the text
    decoded before it; a token holding only the first bytes of a character adds nothing,
    and the one completing it adds the whole character. Without a tokenizer, or for text
    that is not the vocabulary's pieces (Neuronpedia's API examples come as display
    text), the stored strings are shown. `decoder` is a
    `tokenizers.Tokenizer` (see `token_decoder`)."""
    if decoder is not None and ids is None:
        # A bulk export stores vocabulary pieces ("▁the"), which decode like their ids.
        found = [decoder.token_to_id(t) for t in tokens]
        ids = None if None in found else found
    if decoder is None or ids is None or any(i < 0 for i in ids):
        return list(tokens)
    texts = decoder.decode_batch(
        [list(ids[: i + 1]) for i in range(len(ids))], skip_special_tokens=False
    )
    pieces, done = [], ""
    for i, text in enumerate(texts):
        if text.endswith("\ufffd") and i + 1 < len(texts):
            pieces.append("")  # a character's first bytes: a later token completes it
            continue
        if text.startswith(done):
            pieces.append(text[len(done) :])
        else:  # a decoder that rewrites earlier text (rare): the token on its own
            pieces.append(decoder.decode([ids[i]], skip_special_tokens=False))
        done = text
    return pieces


def shade(value: float, largest: float) -> int:
    """0 for a silent token, else 1..SHADES by the value's share of the largest."""
    if value <= 0 or largest <= 0:
        return 0
    return max(1, min(SHADES, math.ceil(SHADES * value / largest)))


def peak_tokens(
    examples: pl.DataFrame, mapper: TokenMapper | None, n_examples: int | None = None
) -> Counter:
    """How many of the first `n_examples` examples (all without it) peak on each token id,
    each token mapped to its id as the input score maps it (`mapper`: the source's id, else
    the vocabulary, else re-tokenized; without a mapper, the source's ids only)."""
    rows = examples.sort("example")
    if n_examples is not None:
        rows = rows.head(n_examples)
    peaks: Counter = Counter()
    for tokens, ids, index in rows.select("tokens", "token_ids", "max_token_index").iter_rows():
        token_id = ids[index] if ids is not None else None
        if mapper is not None:
            token_id = mapper(tokens[index], token_id)
        if token_id is not None:
            peaks[token_id] += 1
    return peaks


# Tokens shown on each side of a context's strongest token.
CONTEXT_SIDE = 12


def contexts(examples: pl.DataFrame, decoder, n: int, hits: set[int] | None = None) -> list[dict]:
    """The `n` strongest examples, each a list of highlighted tokens centred on its
    strongest (at most CONTEXT_SIDE on each side); the shade is scaled to the feature's
    largest activation and each example's max token is marked. With the
    input score's top logit-lens token ids `hits`, each example says whether its strongest
    token is one of them (None where the source gave no token ids)."""
    top = examples.sort("max_value", descending=True, maintain_order=True).head(n)
    largest = float(top["max_value"].max() or 0.0)
    shown = []
    for row in top.iter_rows(named=True):
        pieces = token_pieces(decoder, row["token_ids"], row["tokens"])
        values = row["values"]
        strongest = row["max_token_index"]
        while strongest + 1 < len(pieces) and pieces[strongest] == "":
            strongest += 1  # the token that completes its character shows it
        ids = row["token_ids"]
        tokens = [
            {"text": piece, "value": value, "shade": shade(value, largest), "max": i == strongest}
            for i, (piece, value) in enumerate(zip(pieces, values, strict=True))
        ]
        # centred on the strongest token (decoded whole first, so each piece reads right)
        window = tokens[max(0, strongest - CONTEXT_SIDE) : strongest + CONTEXT_SIDE + 1]
        hit = None if hits is None or ids is None else ids[row["max_token_index"]] in hits
        shown.append({"max_value": row["max_value"], "hit": hit, "tokens": window})
    return shown


def rank_text(rank: tuple[int, int, int]) -> str:
    """ "rank 3 of 32", or "tied 3–32 of 32" for a score that several features share."""
    best, worst, n = rank
    return f"rank {best} of {n}" if best == worst else f"tied {best}–{worst} of {n}"


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


def _nice_ticks(high: float, most: int = 5) -> list[float]:
    """Ticks from 0 at a round step (1, 2, 2.5 or 5 times a power of ten) whose last one
    reaches `high`: at most `most` + 1 of them."""
    high = max(high, 1e-12)
    for power in range(math.floor(math.log10(high / most)), math.floor(math.log10(high)) + 2):
        for base in (1, 2, 2.5, 5):
            step = base * 10**power
            if math.ceil(high / step - 1e-9) <= most:
                n = math.ceil(high / step - 1e-9)
                return [round(i * step, 12) for i in range(n + 1)]
    return [0.0, high]


HISTOGRAM_WIDTH, HISTOGRAM_HEIGHT = 460, 160


def _short(value: float) -> str:
    """A tick label of at most 4 characters: 0.125, 0.5, 64, 512, 2k, 16k."""
    if value >= 1000:
        return f"{value / 1024:g}k"
    return f"{value:.3g}"


def activation_histogram(
    counts: Sequence[int] | None, edges: Sequence[float] | None
) -> dict | None:
    """Bars of the feature's activations on the corpus, over the bins from its first to its
    last non-empty one (log-spaced: half-octaves), each bar's height its count; None
    without a histogram or when it never fired."""
    counts = None if counts is None else list(counts)
    edges = None if edges is None else list(edges)
    if not counts or not edges or not any(counts):
        return None
    first = next(i for i, c in enumerate(counts) if c)
    last = len(counts) - 1 - next(i for i, c in enumerate(reversed(counts)) if c)
    shown = counts[first : last + 1]
    left, top, bottom_margin = 58, 10, 38
    width = HISTOGRAM_WIDTH - left - 14
    height = HISTOGRAM_HEIGHT - top - bottom_margin
    ticks = _nice_ticks(max(shown), most=4)
    step = width / len(shown)
    bottom = top + height
    return {
        "width": HISTOGRAM_WIDTH,
        "height": HISTOGRAM_HEIGHT,
        "left": left,
        "right": left + width,
        "top": top,
        "bottom": bottom,
        "bars": [
            {
                "x": left + i * step,
                "width": step,
                "y": bottom - height * c / ticks[-1],
                "height": height * c / ticks[-1],
                "count": c,
                "low": edges[first + i],
                "high": edges[first + i + 1],
            }
            for i, c in enumerate(shown)
        ],
        "count_ticks": [{"y": bottom - height * v / ticks[-1], "label": f"{v:g}"} for v in ticks],
        # every other edge is a whole power of two: ticked, the others not
        "edge_ticks": [
            {"x": left + i * step, "label": _short(edges[first + i])}
            for i in range(len(shown) + 1)
            if i % 2 == (first % 2)
        ],
        "total": sum(counts),
    }


def _loggable(value) -> bool:
    return is_finite_number(value) and value > 0


def steering_plot(metrics: pl.DataFrame, best_factor: float | None) -> dict | None:
    """Coordinates of the plot of GenSuccess@20 (left axis, linear from 0) and perplexity
    (right axis, log) against the steering factor, factors evenly spaced as tried; None
    without metrics."""
    rows = metrics.sort("factor")
    if rows.is_empty():
        return None
    left, top = PLOT_MARGIN["left"], PLOT_MARGIN["top"]
    width = PLOT_WIDTH - left - PLOT_MARGIN["right"]
    height = PLOT_HEIGHT - top - PLOT_MARGIN["bottom"]
    factors = rows["factor"].to_list()
    step = width / max(1, len(factors) - 1)
    xs = [left + i * step for i in range(len(factors))] if len(factors) > 1 else [left + width / 2]

    success = rows["gen_success_20"].to_list()
    gs_ticks = _nice_ticks(max([v for v in success if v is not None] + [1.0]))
    top_success = gs_ticks[-1]

    def y_success(v):
        return top + height * (1 - v / top_success)

    perplexity = [v for v in rows["perplexity"].to_list()]
    finite = [v for v in perplexity if _loggable(v)]
    lo, hi = (math.log10(min(finite)), math.log10(max(finite))) if finite else (0.0, 1.0)
    # whole decades, ticked at each power of ten
    lo, hi = math.floor(lo), math.ceil(hi)
    if hi == lo:
        hi = lo + 1

    def y_perplexity(v):
        return top + height * (1 - (math.log10(v) - lo) / (hi - lo))

    best_x = None
    if best_factor is not None:
        best_x = next((x for x, f in zip(xs, factors, strict=True) if f == best_factor), None)
    return {
        "width": PLOT_WIDTH,
        "height": PLOT_HEIGHT,
        "left": left,
        "right": left + width,
        "top": top,
        "bottom": top + height,
        "x_ticks": [{"x": x, "label": f"{f:g}"} for x, f in zip(xs, factors, strict=True)],
        "success": [
            {"x": x, "y": y_success(v), "value": v, "factor": f}
            for x, v, f in zip(xs, success, factors, strict=True)
            if v is not None
        ],
        "success_ticks": [{"y": y_success(v), "label": f"{v:g}"} for v in gs_ticks],
        "perplexity": [
            {"x": x, "y": y_perplexity(v), "value": v, "factor": f}
            for x, v, f in zip(xs, perplexity, factors, strict=True)
            if _loggable(v)
        ],
        "perplexity_ticks": [
            {"y": y_perplexity(10**e), "label": f"{10**e:g}"} for e in range(lo, hi + 1)
        ],
        "best_x": best_x,
        "best_factor": best_factor,
    }


def continuations(
    generations: pl.DataFrame,
    best_factor: float | None,
    n: int,
    decoder=None,
    success_ids: set[int] | None = None,
) -> list[dict]:
    """The first `n` prefixes, each with its continuation at every factor tried. With the
    tokenizer `decoder` and the feature's top-20 logit-lens token ids `success_ids`, each
    continuation is split into its tokens (as GenSuccess tokenizes it), the ones that count
    toward GenSuccess@20 marked, and their number is the row's GenSuccess@20."""
    prefixes = sorted(generations["prefix_id"].unique().to_list())[:n]
    shown = []
    for prefix_id in prefixes:
        rows = generations.filter(pl.col("prefix_id") == prefix_id).sort("factor")
        shown.append(
            {
                "prefix": rows["prefix"][0],
                "rows": [
                    {
                        "factor": r["factor"],
                        "continuation": r["continuation"],
                        "best": r["factor"] == best_factor,
                        **_success_tokens(r["continuation"], decoder, success_ids),
                    }
                    for r in rows.iter_rows(named=True)
                ],
            }
        )
    return shown


def success_by_prefix(
    generations: pl.DataFrame, best_factor: float | None, decoder, success_ids: set[int] | None
) -> list[dict]:
    """Each prefix's GenSuccess@20 at the best factor (its count of the feature's top-20
    logit-lens tokens), every prefix; none without a best factor or a tokenizer."""
    if best_factor is None or decoder is None or success_ids is None:
        return []
    rows = generations.filter(pl.col("factor") == best_factor).sort("prefix_id")
    return [
        {
            "prefix": r["prefix"],
            "hits": _success_tokens(r["continuation"], decoder, success_ids)["hits"],
        }
        for r in rows.iter_rows(named=True)
    ]


def gen_success_ids(logit_lens: pl.DataFrame) -> set[int]:
    """The token ids that count toward GenSuccess@20: the feature's top GEN_SUCCESS_TOP_K
    logit-lens tokens, as `gen_metrics.gen_success_counts` takes them (rank < k)."""
    return set(logit_lens.filter(pl.col("rank") < GEN_SUCCESS_TOP_K)["token_id"])


def _success_tokens(text: str, decoder, success_ids: set[int] | None) -> dict:
    """The continuation's tokens with GenSuccess@20's hits marked, and their count."""
    if decoder is None or success_ids is None:
        return {"pieces": None, "hits": None}
    ids = decoder.encode(text, add_special_tokens=False).ids
    pieces = token_pieces(decoder, ids, [""] * len(ids))
    marked = [{"text": p, "hit": i in success_ids} for p, i in zip(pieces, ids, strict=True)]
    return {"pieces": marked, "hits": sum(i in success_ids for i in ids)}


def judge_label(judge: str, proxy: bool) -> str:
    """Who rated: the offline proxy (embedding similarity and perplexity) or an LLM."""
    if proxy:
        return f"proxy judge (no LLM): {judge.removeprefix('proxy:')}"
    return f"LLM judge: {judge}"


def concept_answers(ratings: pl.DataFrame) -> dict | None:
    """A concept feature's SAE-steered answers with their three ratings, and its judge."""
    rows = ratings.filter(pl.col("method") == "sae").sort("split", "factor", "instruction_id")
    if rows.is_empty():
        return None
    return {
        "concept": rows["concept"][0],
        "judge": judge_label(rows["judge"][0], bool(rows["judge_proxy"][0])),
        "rows": rows.select(
            "split",
            "factor",
            "instruction",
            "response",
            "concept_rating",
            "instruction_rating",
            "fluency_rating",
            "harmonic",
        ).to_dicts(),
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


def index_rows(features: pl.DataFrame, descriptions: pl.DataFrame | None) -> list[dict]:
    """One row per feature of the run's features.parquet, with its description if any."""
    rows = features.select(
        "layer",
        "feature",
        "input_score",
        "output_score",
        "best_factor",
        "effective_factor",
        "gen_success_20",
        "live",
        pl.col("logit_lens_tokens").list.head(5).list.join(" | ").alias("tokens"),
    )
    if descriptions is not None and not descriptions.is_empty():
        rows = rows.join(
            descriptions.select("layer", "feature", pl.col("concept").alias("description")),
            on=["layer", "feature"],
            how="left",
        )
    else:
        rows = rows.with_columns(description=pl.lit(None, pl.String))
    rows = rows.sort("layer", "feature").to_dicts()
    for row in rows:
        row["href"] = page_path(row["layer"], row["feature"])
    return rows


# matplotlib's tab10, so a layer's colour here is its colour in the report's plots
LAYER_COLOURS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip


def scatter(rows: list[dict]) -> dict:
    """Coordinates of the input-vs-output scatter of the index, each point a page link
    coloured by its layer and keyed like its table row, so the table's filters hide it."""
    size, margin = 320, 40
    inner = size - 2 * margin

    def place(v):
        return margin + inner * min(1.0, max(0.0, v))

    layers = sorted({r["layer"] for r in rows})
    colour = {layer: LAYER_COLOURS[i % len(LAYER_COLOURS)] for i, layer in enumerate(layers)}
    return {
        "size": size,
        "margin": margin,
        "inner": inner,
        "ticks": [{"at": place(v), "label": f"{v:g}"} for v in (0, 0.25, 0.5, 0.75, 1)],
        "legend": [{"layer": layer, "colour": colour[layer]} for layer in layers],
        "points": [
            {
                "x": place(r["input_score"]),
                "y": size - place(r["output_score"]),
                "href": r["href"],
                "key": f"{r['layer']}:{r['feature']}",
                "colour": colour[r["layer"]],
                "title": f"layer {r['layer']}, feature {r['feature']}",
            }
            for r in rows
            if is_finite_number(r["input_score"]) and is_finite_number(r["output_score"])
        ],
    }


def write_pages(pages: Iterable[tuple[str, dict]], template: str, folder: Path) -> int:
    """Render each page's values into `folder / name`; the count written."""
    page = environment().get_template(template)
    written = 0
    for path, values in pages:
        (folder / path).write_text(page.render(**values), encoding="utf-8")
        written += 1
    return written
