"""Stage `released_concepts` by hand: `saesteer released-concepts` on a small release."""

import logging

import polars as pl

from saesteer.cli import main
from saesteer.concepts.released import RELEASED_CONCEPTS_SCHEMA
from tests.helpers import RELEASE_BEST, import_, release, released, write


def test_cli_writes_the_table(tmp_path, caplog):
    data = write(tmp_path, release())
    out = tmp_path / "out" / "released.parquet"
    with caplog.at_level(logging.INFO, logger="saesteer"):
        rc = main(["released-concepts", "--settings", released(data), "--out", str(out)])
    assert rc == 0
    written = pl.read_parquet(out)
    assert written.schema == pl.Schema(RELEASED_CONCEPTS_SCHEMA)
    assert written.equals(import_(data))
    summary = [
        r.getMessage() for r in caplog.records if r.name == "saesteer.stages.released_concepts"
    ][-1]
    assert "5 released concepts" in summary
    assert "layer 3: 2 concepts, 2 with answers, 2 with all three means" in summary
    assert "mean score 0.779" in summary  # (1.558 + 0) / 2
    assert "layer 10: 3 concepts, 1 with answers, 0 with all three means, mean score -" in summary


def test_cli_errors_name_the_file(tmp_path, caplog):
    files = release()
    files[RELEASE_BEST] = None
    data = write(tmp_path, files)
    out = tmp_path / "released.parquet"
    with caplog.at_level(logging.ERROR, logger="saesteer"):
        rc = main(["released-concepts", "--settings", released(data), "--out", str(out)])
    assert rc == 2
    assert "p_best_steering_factors.json: file not found" in caplog.text
    assert not out.exists()
    rc = main(["released-concepts", "--settings", released(data, n_select=12), "--out", str(out)])
    assert rc == 2
