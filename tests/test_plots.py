"""The plots and the findings page, on hand-made tables with known answers."""

import math

import pytest

from saesteer.aggregate.findings import findings
from saesteer.aggregate.join import feature_table
from saesteer.aggregate.summary import summary_table
from saesteer.errors import ConfigError
from saesteer.plots import PLOTS, write_plots
from saesteer.report_pages import findings_html
from saesteer.stats import BootstrapSettings
from tests.helpers import hand_made_tables, write_layer

BOOTSTRAP = BootstrapSettings(bootstrap=500, seed=0, live_only=True)


@pytest.fixture
def tables(tmp_path):
    return hand_made_tables(tmp_path)


def test_plots_and_the_findings_page(tables, tmp_path):
    features, summary = tables
    paths = [tmp_path / "plots" / f"{name}.png" for name in PLOTS]
    write_plots(features, summary, paths, BOOTSTRAP)
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    page = findings_html(findings(features, BOOTSTRAP), "hand-made")
    assert '<table id="findings">' in page and '<table id="thresholds">' in page
    # The share with both scores > 0.5, its interval over the 6 features and its n.
    assert "<td>0.167 [0, 0.5] (n=6)</td>" in page
    assert '<table id="layers">' in page and '<table id="verdicts">' in page
    assert page.count('<tr class="verdict-') == 6 and "B = 500 resamples, seed 0" in page
    link = "explorer/index.html#layer=8&amp;sort=output:descending"
    layer = f'<a class="explorer-link" href="{link}">8</a>'
    row = f"<tr><td>{layer}</td><td>0.9</td><td>3</td><td>0.1</td><td>0.3</td><td>0.2</td>"
    row += "<td>0.6</td><td>0.533</td><td>0.333 [0, 1] (n=3)</td></tr>"
    assert row in page


def test_plots_without_steering_data_still_draw(tmp_path):
    files = write_layer(tmp_path, 2, with_steering=False)
    features = feature_table({2: files}, n_layers=10)
    paths = [tmp_path / "plots" / f"{name}.png" for name in PLOTS]
    write_plots(features, summary_table(features), paths)
    assert all(p.stat().st_size > 5_000 for p in paths)
    found = findings(features, BOOTSTRAP)
    assert found["n_steered"] == 0 and found["mean_gen_success_20"] is None
    assert all(row["gain"] is None for row in found["thresholds"])
    assert not math.isnan(found["pearson_input_output"])


def test_a_plot_name_it_does_not_know_is_refused(tables, tmp_path):
    features, summary = tables
    with pytest.raises(ConfigError, match="no plot named like"):
        write_plots(features, summary, [tmp_path / "violin.png"])


def test_the_best_factor_histogram_counts_steered_features_by_layer():
    """Categories in grid order with a `none` bar for features with no effective factor,
    one stack per layer, integer counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import polars as pl

    from saesteer.plots import plot_best_factors

    features = pl.DataFrame(
        {
            "layer": [0, 0, 0, 5, 5, 5, 5],
            "best_factor": [10.0, 0.4, None, 10.0, 10.0, 2.0, None],
            "gen_success_20": [1.0, 0.5, 0.0, 2.0, 1.0, 0.2, None],  # last: not steered
        }
    )
    fig, ax = plt.subplots()
    plot_best_factors(features, ax)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.4", "2", "10", "none"]
    by_layer = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
    assert by_layer == {"layer 0": [1, 0, 1, 1], "layer 5": [0, 1, 2, 0]}
    assert all(float(t).is_integer() for t in ax.get_yticks())
    plt.close(fig)
