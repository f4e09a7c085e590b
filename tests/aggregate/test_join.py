"""Every layer's Parquet joined into one row per feature, on small hand-made files."""

import polars as pl
import pytest

from saesteer.aggregate.join import FEATURE_TABLE_SCHEMA, feature_table
from saesteer.errors import DataFileError
from tests.helpers import write_layer


def test_one_row_per_feature_with_every_stage(tables):
    features, _ = tables
    assert features.schema == pl.Schema(FEATURE_TABLE_SCHEMA)
    assert features.select("layer", "feature").rows() == [
        (2, 10),
        (2, 11),
        (2, 12),
        (8, 10),
        (8, 11),
        (8, 12),
    ]
    first = features.row(0, named=True)
    assert first["logit_lens_tokens"] == ["t10_0", "t10_1"]  # in rank order
    assert first["depth"] == 0.3 and first["input_score"] == 0.9 and first["best_factor"] == 0.2
    assert first["variance_explained"] == 0.8 and first["n_examples"] == 50
    # Layer 8 has no SAE metrics (e.g. a downloaded SAE): null, not zero.
    assert features.filter(pl.col("layer") == 8)["variance_explained"].is_null().all()
    assert features.filter(pl.col("feature") == 12)["best_factor"].to_list() == [2.0, None]


def test_a_missing_stage_is_null_not_zero(tmp_path):
    files = write_layer(tmp_path, 2, with_steering=False)
    files["input_scores"].unlink()
    features = feature_table({2: files}, n_layers=10)
    for column in ("input_score", "best_factor", "gen_success_20", "perplexity"):
        assert features[column].is_null().all()
    assert features["output_score"].to_list() == [0.0, 0.001, 0.02]
    with pytest.raises(DataFileError, match="layer 2: no features file"):
        files["features"].unlink()
        feature_table({2: files}, n_layers=10)
