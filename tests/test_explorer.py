"""The feature explorer's pages from hand-built tables whose right answers are known: token
texts against the tokenizer's own decode, shades and ranks counted by hand, the plot's
coordinates at its axes' ends, and the rendered HTML read back with an HTML parser."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

import polars as pl
import pytest

from saesteer.explorer.charts import steering_plot
from saesteer.explorer.index import index_rows, scatter
from saesteer.explorer.pages import ExplorerSettings, LayerTables, feature_pages, rank_in_layer
from saesteer.explorer.render import environment, rank_text, write_pages
from saesteer.explorer.steered import concept_answers, continuations, judge_label
from saesteer.explorer.tokens import SHADES, contexts, shade, token_pieces
from saesteer.report_pages import findings_html
from tests.helpers import hand_made_tables

SETTINGS = ExplorerSettings(contexts=2, prefixes=1, logit_lens_tokens=2)
TEXT = "The quick brown fox, naïvely jumping\nover 3 dogs — ünïcödé 東京."


@pytest.mark.parametrize("name", ["gemma3_tokenizer", "smollm2_tokenizer"])
def test_token_pieces_join_to_the_decoded_text(name, request):
    """SentencePiece (Gemma-3) and byte-level BPE (SmolLM2): the pieces rebuild the text
    the tokenizer decodes, and a word's piece keeps its leading space."""
    tokenizer = request.getfixturevalue(name)
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    pieces = token_pieces(tokenizer.backend_tokenizer, ids, tokenizer.convert_ids_to_tokens(ids))
    assert len(pieces) == len(ids)
    assert "".join(pieces) == tokenizer.decode(ids)
    word = next(i for i, p in enumerate(pieces) if "brown" in p)
    assert pieces[word] == " brown"


def test_a_bulk_exports_vocabulary_pieces_are_decoded(gemma3_tokenizer):
    """Pieces without ids (Neuronpedia's bulk export) decode as their ids would; display
    text that is not the vocabulary's pieces is shown as stored."""
    decoder = gemma3_tokenizer.backend_tokenizer
    ids = gemma3_tokenizer("The quick brown fox", add_special_tokens=False)["input_ids"]
    pieces = gemma3_tokenizer.convert_ids_to_tokens(ids)
    assert "▁quick" in pieces
    assert token_pieces(decoder, None, pieces) == token_pieces(decoder, ids, pieces)
    assert token_pieces(decoder, None, ["The", " quick"]) == ["The", " quick"]


def test_the_max_mark_moves_to_the_token_that_completes_its_character(smollm2_tokenizer):
    ids = smollm2_tokenizer("a 東京", add_special_tokens=False)["input_ids"]
    pieces = token_pieces(smollm2_tokenizer.backend_tokenizer, ids, [""] * len(ids))
    first = pieces.index("")  # the first bytes of a split character show nothing
    examples = pl.DataFrame(
        {
            "tokens": [[""] * len(ids)],
            "token_ids": [ids],
            "values": [[1.0] * len(ids)],
            "max_value": [1.0],
            "max_token_index": [first],
        }
    )
    shown = contexts(examples, smollm2_tokenizer.backend_tokenizer, 1)[0]["tokens"]
    marked = [t["text"] for t in shown if t["max"]]
    assert len(marked) == 1 and marked[0] != "" and marked[0] in "".join(pieces)


def test_token_pieces_without_ids_are_the_stored_strings():
    assert token_pieces(None, [1, 2], ["a", "b"]) == ["a", "b"]
    assert token_pieces(object(), [-1, 2], ["x", "y"]) == ["x", "y"]


def test_shade_scales_to_the_largest_activation():
    assert [shade(v, 8.0) for v in (0.0, -1.0, 0.01, 1.0, 1.01, 7.99, 8.0)] == [
        0,
        0,
        1,
        1,
        2,
        SHADES,
        SHADES,
    ]
    assert shade(1.0, 0.0) == 0


def _examples():
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


def test_contexts_strongest_first_with_the_max_token_marked():
    shown = contexts(_examples(), None, 2)
    assert [c["max_value"] for c in shown] == [4.0, 2.0]
    first, second = shown
    assert [t["text"] for t in first["tokens"]] == ["d", "e", "f"]
    assert [t["max"] for t in first["tokens"]] == [True, False, False]
    assert [t["max"] for t in second["tokens"]] == [False, True, False]
    # Scaled to the feature's largest activation (4.0), not each example's own.
    assert [t["shade"] for t in first["tokens"]] == [SHADES, 0, 1]
    assert [t["shade"] for t in second["tokens"]] == [0, 4, 2]


def test_rank_in_layer_best_first_ties_share_missing_unranked():
    scores = pl.DataFrame(
        {"feature": [1, 2, 3, 4, 5], "output_score": [0.2, 0.9, None, 0.2, float("nan")]}
    )
    assert rank_in_layer(scores, "output_score") == {2: (1, 1, 3), 1: (2, 3, 3), 4: (2, 3, 3)}
    assert rank_text((2, 3, 3)) == "tied 2–3 of 3" and rank_text((1, 1, 3)) == "rank 1 of 3"


def test_steering_plot_places_points_on_its_axes():
    metrics = pl.DataFrame(
        {
            "factor": [4.0, 0.0, 2.0],
            "gen_success_20": [3.0, 0.0, None],
            "perplexity": [1000.0, 10.0, 100.0],
        }
    )
    plot = steering_plot(metrics, 2.0)
    xs = [t["x"] for t in plot["x_ticks"]]
    assert [t["label"] for t in plot["x_ticks"]] == ["0", "2", "4"]
    assert xs[0] == plot["left"] and xs[-1] == plot["right"]
    assert xs[1] == pytest.approx((plot["left"] + plot["right"]) / 2)
    assert plot["best_x"] == xs[1]
    success = {p["factor"]: p["y"] for p in plot["success"]}
    assert set(success) == {0.0, 4.0}  # a missing value draws no point
    assert success[0.0] == plot["bottom"] and success[4.0] == plot["top"]  # axis 0..3
    perplexity = {p["factor"]: p["y"] for p in plot["perplexity"]}
    assert perplexity[0.0] == pytest.approx(plot["bottom"])
    assert perplexity[4.0] == pytest.approx(plot["top"])
    assert perplexity[2.0] == pytest.approx((plot["top"] + plot["bottom"]) / 2)  # log scale
    assert steering_plot(metrics, 5.0)["best_x"] is None
    assert steering_plot(metrics.clear(), 2.0) is None
    assert [t["label"] for t in plot["success_ticks"]] == ["0", "1", "2", "3"]
    assert [t["label"] for t in plot["perplexity_ticks"]] == ["10", "100", "1000"]
    # round ticks for values that are not: the axis ends at the first round one above
    odd = pl.DataFrame(
        {"factor": [0.0, 1.0], "gen_success_20": [0.6, 12.9], "perplexity": [26.0, 124.0]}
    )
    plot = steering_plot(odd, None)
    assert [t["label"] for t in plot["success_ticks"]] == ["0", "5", "10", "15"]
    assert [t["label"] for t in plot["perplexity_ticks"]] == ["10", "100", "1000"]
    assert plot["success_ticks"][-1]["y"] == plot["top"]


def test_judge_label_names_proxy_and_llm():
    assert judge_label("proxy:minilm+ppl:m", True) == "proxy judge (no LLM): minilm+ppl:m"
    assert judge_label("openai:gpt-4o-mini", False) == "LLM judge: openai:gpt-4o-mini"


class _Page(HTMLParser):
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


def _layer_tables() -> LayerTables:
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
        activations=_examples(),
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


def test_feature_pages_show_the_features_numbers(tmp_path):
    pages = list(feature_pages(3, _layer_tables(), None, SETTINGS, "run-x"))
    assert [name for name, _ in pages] == ["7.html", "9.html", "11.html"]
    assert write_pages(pages, "feature.html.j2", tmp_path) == 3
    html = (tmp_path / "7.html").read_text()
    page = _Page()
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
    last = _text_of(tmp_path / "11.html", "scores")
    assert "Input score — not scored" in last and "Output score 0.5 rank 2 of 3" in last
    assert "not live: fired on 1 examples" in last and "not live" not in scores


def test_a_steered_feature_without_an_effective_factor_says_so(tmp_path):
    tables = _layer_tables()
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
    scores = _text_of(tmp_path / "7.html", "scores")
    assert "Best steering factor no effective factor GenSuccess@20 0" in scores


def _text_of(path, key):
    page = _Page()
    page.feed(path.read_text())
    return " ".join(page.text[key].split())


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


def test_findings_page_links_into_the_explorer(tmp_path):
    from saesteer.aggregate.findings import findings
    from saesteer.stats import BootstrapSettings

    features, _ = hand_made_tables(tmp_path)
    found = findings(features, BootstrapSettings(bootstrap=200, seed=0, live_only=True))
    page = _Page()
    page.feed(findings_html(found, "run-x"))
    assert "explorer/index.html#min_output=0.01&sort=output:descending" in page.links
    assert "explorer/index.html#min_output=0.1&sort=output:descending" in page.links
    assert "explorer/index.html#layer=8&sort=output:descending" in page.links
    findings_text = " ".join(page.text["findings"].split())
    assert "Pearson correlation, input vs output score -0.39 (n=6)" in findings_text
    assert "steered features weighted 1.5 [" in findings_text and "(n=5)" in findings_text


def test_concept_answers_only_the_sae_rows():
    answers = concept_answers(_layer_tables().concept_ratings)
    assert [r["response"] for r in answers["rows"]] == ["HI!"]
    assert answers["judge"] == "proxy judge (no LLM): minilm"
    assert concept_answers(_layer_tables().concept_ratings.filter(pl.col("method") == "x")) is None


def test_a_feature_page_shows_the_input_scores_hits(tmp_path):
    """ "H of N examples", the logit-lens tokens the score reads with how many examples
    peak on each (the marked rows add up to H), and which contexts are hits."""
    tables = _layer_tables()
    ids = [[1, 5, 2], [6, 1, 2], [1, 2, 4]]  # the examples peak on 5, 6 and 4
    tables.activations = _examples().with_columns(token_ids=pl.Series(ids, dtype=pl.List(pl.Int64)))
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
    page = _Page()
    page.feed((tmp_path / "7.html").read_text())
    assert "2 of 3 examples" in " ".join(page.text["scores"].split())
    # the raw logits beside the probabilities (a file without them shows no column)
    assert "1 first 0.5 8.25" in " ".join(page.text["logit-lens"].split())
    assert "logit" not in _text_of_values(feature_pages(3, _layer_tables(), None, SETTINGS, "r"))


@pytest.mark.parametrize("name", ["gemma3_tokenizer", "smollm2_tokenizer"])
def test_continuations_mark_the_tokens_gen_success_counts(name, request):
    """Per continuation, the marked tokens are the ones GenSuccess@20 counts: their number
    equals `gen_metrics.gen_success_counts` on the same rows, and the pieces rebuild it."""
    from saesteer.gen_metrics import gen_success_counts

    tokenizer = request.getfixturevalue(name)
    texts = [" the ocean is deep and the sea is blue", " nothing here", " ocean ocean sea"]
    generations = pl.DataFrame(
        {
            "feature": [7, 7, 7],
            "factor": [0.0, 4.0, 8.0],
            "prefix_id": [0, 0, 0],
            "prefix": ["Once"] * 3,
            "continuation": texts,
        }
    )
    words = tokenizer([" ocean", " sea", " blue"], add_special_tokens=False)["input_ids"]
    top = [ids[0] for ids in words] + list(range(100, 117))  # 20 logit-lens tokens
    logit_lens = pl.DataFrame({"feature": [7] * 20, "rank": list(range(20)), "token_id": top})
    (shown,) = continuations(generations, 4.0, 1, tokenizer.backend_tokenizer, set(top))
    expected = gen_success_counts(generations, logit_lens, tokenizer, [20])["hits_20"]
    assert [r["hits"] for r in shown["rows"]] == expected.to_list()
    assert shown["rows"][0]["hits"] >= 3  # ocean, sea, blue
    for row, text in zip(shown["rows"], texts, strict=True):
        assert "".join(p["text"] for p in row["pieces"]) == tokenizer.decode(
            tokenizer(text, add_special_tokens=False)["input_ids"]
        )
        assert sum(p["hit"] for p in row["pieces"]) == row["hits"]


def test_a_long_context_is_centred_on_its_strongest_token():
    from saesteer.explorer.tokens import CONTEXT_SIDE

    n, strongest = 40, 30
    values = [0.0] * n
    values[strongest] = 5.0
    example = pl.DataFrame(
        {
            "layer": [3],
            "feature": [7],
            "example": [0],
            "tokens": [[f"t{i} " for i in range(n)]],
            "token_ids": [None],
            "values": [values],
            "max_value": [5.0],
            "max_token_index": [strongest],
        },
        schema_overrides={"token_ids": pl.List(pl.Int64)},
    )
    (shown,) = contexts(example, None, 1)
    texts = [t["text"] for t in shown["tokens"]]
    assert texts[0] == f"t{strongest - CONTEXT_SIDE} " and texts[-1] == f"t{n - 1} "
    assert shown["tokens"][CONTEXT_SIDE]["max"] and texts[CONTEXT_SIDE] == f"t{strongest} "


def _text_of_values(pages) -> str:
    """The logit-lens header of the first page rendered, as text."""
    name, values = next(iter(pages))
    html = environment().get_template("feature.html.j2").render(**values)
    return html.split('id="logit-lens"', 1)[1].split("</tr>", 1)[0]


def test_peak_counts_map_tokens_and_cut_examples_as_the_input_score_does(gemma3_tokenizer):
    """Examples without token ids (Neuronpedia's pieces and display strings) are mapped to
    ids as the input score maps them, and only its first `max_examples` count: the counts
    of the score's top-k tokens add up to its n_hits."""
    from saesteer.explorer.tokens import peak_tokens
    from saesteer.input_score import InputScoreSettings, score_input

    vocab = gemma3_tokenizer.get_vocab()
    pieces = ["▁ocean", " sea", "▁ocean", "▁blue", "▁ocean"]  # a piece, a display string
    examples = pl.DataFrame(
        {
            "layer": [0] * 5,
            "feature": [7] * 5,
            "example": [4, 0, 1, 2, 3],  # stored out of order: the first 3 are 0, 1, 2
            "tokens": [["▁a", p] for p in pieces],
            "token_ids": [None] * 5,
            "values": [[0.0, 1.0]] * 5,
            "max_value": [1.0] * 5,
            "max_token_index": [1] * 5,
        },
        schema_overrides={"token_ids": pl.List(pl.Int64)},
    )
    ocean, sea = vocab["▁ocean"], vocab["▁sea"]
    lens = pl.DataFrame(
        {"layer": [0, 0], "feature": [7, 7], "rank": [0, 1], "token_id": [ocean, sea]}
    )
    settings = InputScoreSettings(top_k=2, max_examples=3, min_examples=1)
    scores = score_input(examples, lens, gemma3_tokenizer, settings)
    from saesteer.input_score import TokenMapper

    mapper = TokenMapper(gemma3_tokenizer.backend_tokenizer)
    peaks = peak_tokens(examples, mapper, scores["n_examples"][0])
    assert scores["n_hits"][0] == 2  # examples 0 (" sea") and 1 ("▁ocean"); 2 is "▁blue"
    assert peaks[ocean] + peaks[sea] == scores["n_hits"][0]
    assert (peaks[ocean], peaks[sea], sum(peaks.values())) == (1, 1, 3)


def test_activation_histogram_spans_the_bins_where_the_feature_fired():
    from saesteer.explorer.charts import activation_histogram
    from saesteer.mining import HISTOGRAM_EDGES

    counts = [0] * (len(HISTOGRAM_EDGES) - 1)
    counts[20], counts[21], counts[23] = 3, 1, 6  # (1, 1.41], (1.41, 2], (2.83, 4]
    shown = activation_histogram(counts, HISTOGRAM_EDGES)
    assert [b["count"] for b in shown["bars"]] == [3, 1, 0, 6]
    assert (shown["bars"][0]["low"], shown["bars"][-1]["high"]) == (1.0, 4.0)
    assert shown["total"] == 10
    tallest = max(shown["bars"], key=lambda b: b["height"])
    assert tallest["count"] == 6 and tallest["y"] >= shown["top"]
    assert [t["label"] for t in shown["count_ticks"]][-1] in {"6", "8", "10"}
    assert [t["label"] for t in shown["edge_ticks"]] == ["1", "2", "4"]  # whole powers of 2
    wide = [0] * (len(HISTOGRAM_EDGES) - 1)
    wide[40] = wide[45] = 1  # (1024, 1448] and (5793, 8192]
    assert [t["label"] for t in activation_histogram(wide, HISTOGRAM_EDGES)["edge_ticks"]] == [
        "1k", "2k", "4k", "8k",
    ]  # fmt: skip
    assert activation_histogram([0] * (len(HISTOGRAM_EDGES) - 1), HISTOGRAM_EDGES) is None
    assert activation_histogram(None, None) is None


def test_a_feature_page_shows_negative_logits_its_histogram_and_success_per_prefix(
    tmp_path, gemma3_tokenizer
):
    from saesteer.mining import HISTOGRAM_EDGES

    tables = _layer_tables()
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
    assert _text_of(tmp_path / "7.html", "negative-logits").split()[3:] == [
        "1", "hush", "-9.5", "2", "calm", "-8",
    ]  # fmt: skip
    assert "Once … 3 Then … 1 mean over 2 prefixes 1.5" in _text_of(
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
