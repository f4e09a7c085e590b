"""The feature pages from hand-built tables whose right answers are known: ranks counted
by hand, and the rendered HTML read back with an HTML parser."""

from __future__ import annotations

import dataclasses

import polars as pl

from saesteer.explorer.pages import feature_pages, rank_in_layer
from saesteer.explorer.render import environment, rank_text, write_pages
from tests.explorer.tables import SETTINGS, Page, examples, layer_tables, text_of


def test_rank_in_layer_best_first_ties_share_missing_unranked():
    scores = pl.DataFrame(
        {"feature": [1, 2, 3, 4, 5], "output_score": [0.2, 0.9, None, 0.2, float("nan")]}
    )
    assert rank_in_layer(scores, "output_score") == {2: (1, 1, 3), 1: (2, 3, 3), 4: (2, 3, 3)}
    assert rank_text((2, 3, 3)) == "tied 2–3 of 3" and rank_text((1, 1, 3)) == "rank 1 of 3"


def test_feature_pages_show_the_features_numbers(tmp_path):
    pages = list(feature_pages(3, layer_tables(), None, SETTINGS, "run-x"))
    assert [name for name, _ in pages] == ["7.html", "9.html", "11.html"]
    assert write_pages(pages, "feature.html.j2", tmp_path) == 3
    html = (tmp_path / "7.html").read_text()
    page = Page()
    page.feed(html)
    scores = " ".join(page.text["scores"].split())
    assert "Input score 0.3 rank 2 of 2 in layer 3" in scores
    assert "chance level 0.2 (above chance)" in scores
    assert "Output score 0.9 rank 1 of 3 in layer 3" in scores
    assert "Best steering factor 8 GenSuccess@20 1.5 perplexity 40" in scores
    lens = " ".join(page.text["logit-lens"].split())
    assert "1 first 0.5" in lens and "2 second 0.25" in lens and "third" not in lens
    assert page.text["description"] == "loud things"
    # Two contexts (SETTINGS.contexts), the strongest first, its max token marked.
    assert page.text["contexts"].split() == ["4def", "2abc"]  # its max value, its tokens
    assert ("tok a8 max", "4") in page.spans and ("tok a4 max", "2") in page.spans
    # One prefix (SETTINGS.prefixes), every factor, the best one marked; text escaped.
    assert "&lt;b&gt;loud&lt;/b&gt;" in html and "<b>loud" not in html
    assert html.count('class="best"') == 1 and "Then" not in html
    assert 'id="steering-plot"' in html and 'class="best-factor"' in html
    assert page.text["judge"] == "proxy judge (no LLM): minilm"
    answers = page.text["concept-answers"].split()
    assert "HI!" in answers and "hi" not in answers  # the SAE's answers, not DiffMean's
    assert page.links == ["../../index.html", "9.html"]  # no previous page: the first
    unsteered = (tmp_path / "9.html").read_text()
    assert "steering-plot" not in unsteered and "was not steered" in unsteered
    assert "Concept steering" not in unsteered
    last = text_of(tmp_path / "11.html", "scores")
    assert "Input score — not scored" in last and "Output score 0.5 rank 2 of 3" in last
    assert "not live: fired on 1 examples" in last and "not live" not in scores


def test_a_steered_feature_without_an_effective_factor_says_so(tmp_path):
    tables = layer_tables()
    none_worked = pl.DataFrame(
        {
            "feature": [7],
            "best_factor": [None],
            "effective_factor": [False],
            "gen_success_20": [0.0],
            "perplexity": [None],
        },
        schema_overrides={"best_factor": pl.Float64, "perplexity": pl.Float64},
    )
    tables = dataclasses.replace(tables, best_factors=none_worked)
    write_pages(feature_pages(3, tables, None, SETTINGS, "run-x"), "feature.html.j2", tmp_path)
    scores = text_of(tmp_path / "7.html", "scores")
    assert "Best steering factor no effective factor GenSuccess@20 0" in scores


def test_a_feature_page_shows_the_input_scores_hits(tmp_path):
    """ "H of N examples", the logit-lens tokens the score reads with how many examples
    peak on each (the marked rows add up to H), and which contexts are hits."""
    tables = layer_tables()
    ids = [[1, 5, 2], [6, 1, 2], [1, 2, 4]]  # the examples peak on 5, 6 and 4
    tables.activations = examples().with_columns(token_ids=pl.Series(ids, dtype=pl.List(pl.Int64)))
    tables.input_scores = tables.input_scores.with_columns(
        n_hits=pl.Series([2, 0, 0]), top_k=pl.Series([2, 2, 2])
    )
    tables.logit_lens = tables.logit_lens.with_columns(logit=pl.Series([7.5, 8.25, 3.0]))
    pages = dict(feature_pages(3, tables, None, SETTINGS, "run-x"))
    values = pages["7.html"]
    # top_k 2: " first" (id 4) and " second" (id 5) are read, " third" (id 6) is not
    assert [(t["token"], t["counted"], t["peaks"]) for t in values["logit_lens"]] == [
        (" first", True, 1),
        (" second", True, 1),
    ]
    assert sum(t["peaks"] for t in values["logit_lens"] if t["counted"]) == values["n_hits"]
    # the strongest context peaks on " third": not a hit; the next on " second": a hit
    assert [c["hit"] for c in values["contexts"]] == [False, True]
    write_pages(pages.items(), "feature.html.j2", tmp_path)
    page = Page()
    page.feed((tmp_path / "7.html").read_text())
    assert "2 of 3 examples" in " ".join(page.text["scores"].split())
    # the raw logits beside the probabilities (a file without them shows no column)
    assert "1 first 0.5 8.25" in " ".join(page.text["logit-lens"].split())
    assert "logit" not in _text_of_values(feature_pages(3, layer_tables(), None, SETTINGS, "r"))


def _text_of_values(pages) -> str:
    """The logit-lens header of the first page rendered, as text."""
    name, values = next(iter(pages))
    html = environment().get_template("feature.html.j2").render(**values)
    return html.split('id="logit-lens"', 1)[1].split("</tr>", 1)[0]


def test_a_feature_page_shows_negative_logits_its_histogram_and_success_per_prefix(
    tmp_path, gemma3_tokenizer
):
    from saesteer.mining import HISTOGRAM_EDGES

    tables = layer_tables()
    vocab = gemma3_tokenizer.get_vocab()
    loud = vocab["▁loud"]
    tables.logit_lens = pl.DataFrame(
        {
            "layer": [3] * 20,
            "feature": [7] * 20,
            "rank": list(range(20)),
            "token_id": [loud] + list(range(100, 119)),
            "token": [" loud"] + [f"t{i}" for i in range(19)],
            "prob": [0.5] + [0.01] * 19,
        }
    )
    tables.negative_logits = pl.DataFrame(
        {"feature": [7, 7], "rank": [1, 0], "token": [" calm", " hush"], "logit": [-8.0, -9.5]}
    )
    histogram = [0] * (len(HISTOGRAM_EDGES) - 1)
    histogram[22] = 4
    tables.densities = pl.DataFrame(
        {
            "feature": [7],
            "density": [0.01],
            "density_source": ["mined"],
            "histogram": [histogram],
            "histogram_edges": [HISTOGRAM_EDGES],
        }
    )
    tables.generations = pl.DataFrame(
        {
            "feature": [7] * 4,
            "factor": [8.0, 2.0, 8.0, 2.0],
            "prefix_id": [0, 0, 1, 1],
            "prefix": ["Once", "Once", "Then", "Then"],
            "continuation": [" loud loud and loud", " quiet", " so loud", " loud"],
        }
    )
    pages = dict(feature_pages(3, tables, gemma3_tokenizer.backend_tokenizer, SETTINGS, "r"))
    values = pages["7.html"]
    # at the best factor 8: prefix 0 says " loud" 3 times, prefix 1 once (mean 2)
    assert values["success_by_prefix"] == [
        {"prefix": "Once", "hits": 3},
        {"prefix": "Then", "hits": 1},
    ]
    write_pages(pages.items(), "feature.html.j2", tmp_path)
    assert text_of(tmp_path / "7.html", "negative-logits").split()[3:] == [
        "1", "hush", "-9.5", "2", "calm", "-8",
    ]  # fmt: skip
    assert "Once … 3 Then … 1 mean over 2 prefixes 1.5" in text_of(
        tmp_path / "7.html", "success-by-prefix"
    )
    html = (tmp_path / "7.html").read_text()
    assert html.count('class="bar"') == 1 and "4 tokens in (2, 2.83]" in html
    assert "The 4 tokens of the mined corpus" in html
    # a feature with no effective factor says so instead of a table
    tables.best_factors = tables.best_factors.with_columns(
        best_factor=pl.lit(None, pl.Float64), effective_factor=pl.lit(False)
    )
    pages = dict(feature_pages(3, tables, gemma3_tokenizer.backend_tokenizer, SETTINGS, "r"))
    assert pages["7.html"]["success_by_prefix"] == []
    write_pages(pages.items(), "feature.html.j2", tmp_path)
    assert "No effective factor" in (tmp_path / "7.html").read_text()
