"""Stage `explorer_index` by hand: `saesteer explorer-index`, called as the rule called
it, writes the explorer's table exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/explorer/index.html"
)


def test_a_missing_feature_page_is_one_line_naming_it(tmp_path, caplog):
    """An index whose pages are not all there is refused (exit status 2), naming a page."""
    import logging

    from saesteer.cli import main
    from tests.helpers import hand_made_tables

    features, _ = hand_made_tables(tmp_path / "run")
    features.write_parquet(tmp_path / "features.parquet")
    pages = tmp_path / "explorer" / "layers"
    for layer in (2, 8):
        (pages / str(layer)).mkdir(parents=True)
    (pages / "2" / "10.html").write_text("")
    out = tmp_path / "explorer" / "index.html"
    argv = ["explorer-index", "--run-name", "r", "--features", str(tmp_path / "features.parquet")]
    argv += ["--pages", str(pages / "2"), str(pages / "8"), "--out", str(out)]
    with caplog.at_level(logging.ERROR, logger="saesteer"):
        assert main(argv) == 2
    assert "5 feature pages missing, e.g. ['layers/2/11.html'" in caplog.text
    assert not out.exists()
