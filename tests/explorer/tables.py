"""Hand-built tables of one layer whose right answers are known, and an HTML parser that
reads a rendered page back, shared by the explorer's tests."""

from __future__ import annotations

from html.parser import HTMLParser

import polars as pl

from saesteer.explorer.pages import ExplorerSettings, LayerTables

SETTINGS = ExplorerSettings(contexts=2, prefixes=1, logit_lens_tokens=2)


class Page(HTMLParser):
    """The text of each element with an id, the classes of spans, and the links."""

    def __init__(self):
        super().__init__()
        self.stack, self.text, self.spans, self.links = [], {}, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "span":
            self.spans.append((attrs.get("class", ""), attrs.get("title")))
        if tag in ("td", "th", "div"):
            self.handle_data(" ")  # cells read apart
        if tag not in ("br", "meta", "input", "rect", "line", "circle"):
            self.stack.append(attrs.get("id"))

    def handle_endtag(self, tag):
        if tag not in ("br", "meta", "input", "rect", "line", "circle") and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for key in self.stack:
            if key:
                self.text[key] = self.text.get(key, "") + data


def examples():
    return pl.DataFrame(
        {
            "layer": [3, 3, 3],
            "feature": [7, 7, 7],
            "example": [0, 1, 2],
            "tokens": [["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]],
            "token_ids": [None, None, None],
            "values": [[0.0, 2.0, 1.0], [4.0, 0.0, 0.5], [0.0, 0.0, 1.0]],
            "max_value": [2.0, 4.0, 1.0],
            "max_token_index": [1, 0, 2],
        },
        schema_overrides={"token_ids": pl.List(pl.Int64)},
    )


def layer_tables() -> LayerTables:
    features = [7, 9, 11]
    return LayerTables(
        features=pl.DataFrame({"layer": [3] * 3, "feature": features}),
        logit_lens=pl.DataFrame(
            {
                "layer": [3] * 3,
                "feature": [7, 7, 7],
                "rank": [1, 0, 2],
                "token_id": [5, 4, 6],
                "token": [" second", " first", " third"],
                "prob": [0.25, 0.5, 0.125],
            }
        ),
        input_scores=pl.DataFrame(
            {
                "feature": features,
                "input_score": [0.3, 0.6, None],
                "input_score_chance": [0.2] * 3,
                "n_examples": [3, 3, 1],
            }
        ),
        output_scores=pl.DataFrame({"feature": features, "output_score": [0.9, 0.1, 0.5]}),
        activations=examples(),
        generations=pl.DataFrame(
            {
                "feature": [7] * 4,
                "factor": [8.0, 2.0, 8.0, 2.0],
                "prefix_id": [0, 0, 1, 1],
                "prefix": ["Once", "Once", "Then", "Then"],
                "continuation": [" <b>loud</b>", " quiet", " x", " y"],
            }
        ),
        gen_metrics=pl.DataFrame(
            {
                "feature": [7, 7],
                "factor": [2.0, 8.0],
                "gen_success_20": [0.5, 1.5],
                "perplexity": [12.0, 40.0],
            }
        ),
        best_factors=pl.DataFrame(
            {
                "feature": [7, 9],
                "best_factor": [8.0, None],
                "effective_factor": [True, None],
                "gen_success_20": [1.5, None],
                "perplexity": [40.0, None],
            }
        ),
        concepts=pl.DataFrame({"feature": [7], "concept": ["loud things"]}),
        concept_ratings=pl.DataFrame(
            {
                "method": ["sae", "diffmean"],
                "feature": [7, 7],
                "factor": [8.0, 8.0],
                "instruction_id": [0, 0],
                "split": ["test", "test"],
                "instruction": ["Say hi.", "Say hi."],
                "response": ["HI!", "hi"],
                "concept": ["loud things"] * 2,
                "concept_rating": [2.0, 1.0],
                "instruction_rating": [1.0, 1.0],
                "fluency_rating": [2.0, 2.0],
                "harmonic": [1.5, 1.2],
                "judge": ["proxy:minilm"] * 2,
                "judge_proxy": [True, True],
            }
        ),
    )


def text_of(path, key):
    page = Page()
    page.feed(path.read_text())
    return " ".join(page.text[key].split())
