"""The report's pages: the findings page's links into the explorer, and each figure's
caption under it."""

from __future__ import annotations

from pathlib import Path

from saesteer.report_pages import findings_html
from tests.explorer.tables import Page
from tests.helpers import hand_made_tables


def test_findings_page_links_into_the_explorer(tmp_path):
    from saesteer.aggregate.findings import findings
    from saesteer.stats import BootstrapSettings

    features, _ = hand_made_tables(tmp_path)
    found = findings(features, BootstrapSettings(bootstrap=200, seed=0, live_only=True))
    page = Page()
    page.feed(findings_html(found, "run-x"))
    assert "explorer/index.html#min_output=0.01&sort=output:descending" in page.links
    assert "explorer/index.html#min_output=0.1&sort=output:descending" in page.links
    assert "explorer/index.html#layer=8&sort=output:descending" in page.links
    findings_text = " ".join(page.text["findings"].split())
    assert "Pearson correlation, input vs output score -0.39 (n=6)" in findings_text
    assert "steered features weighted 1.5 [" in findings_text and "(n=5)" in findings_text


def test_figures_page_shows_each_caption_under_its_figure(tmp_path):
    """The shipped captions, rendered (their Jinja filled with the run's layers, their
    reStructuredText as HTML), each right under its own inlined PNG, in order."""
    import base64
    import re

    from saesteer.report_pages import figures_html

    report = Path(__file__).parents[1] / "workflow" / "report"
    pairs = []
    for name in ("roles_across_layers", "gen_success_filtering"):
        png = tmp_path / f"{name}.png"
        png.write_bytes(name.encode())  # stands in for the image: its bytes are inlined
        pairs.append((png, (report / f"{name}.rst").read_text()))
    page = figures_html(pairs, "run<x>", [0, 16])
    figures = re.findall(r'<figure id="(\w+)"><img src="data:image/png;base64,([^"]+)".*?'
                         r"<figcaption>(.*?)</figcaption></figure>", page, re.S)  # fmt: skip
    assert [(f, base64.b64decode(data).decode()) for f, data, _ in figures] == [
        ("roles_across_layers", "roles_across_layers"),
        ("gen_success_filtering", "gen_success_filtering"),
    ]
    roles, filtering = (caption for *_, caption in figures)
    assert "interquartile range" in roles and "{{" not in roles and "{%" not in roles
    assert 'href="explorer/index.html#layer=16&amp;sort=output:descending">layer 16</a>' in roles
    assert "GenSuccess&#64;20 at the best factor" in filtering and "`" not in filtering
    assert "run&lt;x&gt;" in page and "run<x>" not in page
