"""The explorer's front page: every feature linked to its page, the scatter keyed like
the table."""

from __future__ import annotations

import polars as pl

from saesteer.explorer.index import index_rows, scatter
from saesteer.explorer.render import environment


def test_index_lists_every_feature_linked_to_its_page():
    features = pl.DataFrame(
        {
            "layer": [5, 3],
            "feature": [1, 7],
            "input_score": [None, 0.25],
            "output_score": [0.5, 1.0],
            "best_factor": [None, 8.0],
            "effective_factor": [False, True],
            "gen_success_20": [0.0, 1.5],
            "live": [False, True],
            "logit_lens_tokens": [["a", "b"], ["x\ny", "z", "w", "v", "u", "t"]],
        }
    )
    descriptions = pl.DataFrame({"layer": [3], "feature": [7], "concept": ["loud things"]})
    rows = index_rows(features, descriptions)
    assert [(r["layer"], r["feature"], r["href"]) for r in rows] == [
        (3, 7, "layers/3/7.html"),
        (5, 1, "layers/5/1.html"),
    ]
    assert rows[0]["description"] == "loud things" and rows[1]["description"] is None
    assert rows[0]["tokens"] == "x\ny | z | w | v | u"
    plot = scatter(rows + [{**rows[0], "input_score": float("nan"), "href": "nan"}])
    assert [p["href"] for p in plot["points"]] == ["layers/3/7.html"]  # both scores only
    point = plot["points"][0]
    # coloured by layer (both layers in the legend), keyed like its table row
    assert [entry["layer"] for entry in plot["legend"]] == [3, 5]
    assert point["colour"] == plot["legend"][0]["colour"] != plot["legend"][1]["colour"]
    assert point["key"] == "3:7"
    assert point["x"] == plot["margin"] + plot["inner"] / 4
    assert point["y"] == plot["margin"]  # output score 1: the top
    html = (
        environment()
        .get_template("index.html.j2")
        .render(run="r", rows=rows, layers=[3, 5], scatter=plot)
    )
    assert html.count("<tr data-layer=") == 2
    assert '<a href="layers/3/7.html" data-key="3:7">' in html
    assert 'data-output="1.0"' in html and 'data-input=""' in html
    # Layer 5's feature never fired enough and no factor steered it: both said, once.
    assert html.count(">not live</span>") == 1 and html.count("none effective") == 1
