import json

import polars as pl
import pytest

from saesteer.errors import ConfigError
from saesteer.features import features_frame, select_features


def test_explicit_ids_are_kept_in_order():
    assert select_features([7, 1, 3], layer=0, d_sae=8) == [7, 1, 3]


def test_random_sample_is_seeded_unique_sorted_and_in_range():
    a = select_features({"random": 50, "seed": 3}, layer=0, d_sae=100)
    b = select_features({"random": 50, "seed": 3}, layer=0, d_sae=100)
    c = select_features({"random": 50, "seed": 4}, layer=0, d_sae=100)
    assert a == b != c
    assert len(set(a)) == 50 and a == sorted(a) and a[0] >= 0 and a[-1] < 100


def test_feature_file_picks_this_layers_entry(tmp_path):
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"3": [4, 2], "5": [1]}))
    assert select_features({"file": str(path)}, layer=3, d_sae=10) == [4, 2]
    assert select_features({"file": str(path)}, layer=5, d_sae=10) == [1]


def test_ids_beyond_the_sae_width_are_rejected_at_job_time():
    # d_sae may only be known once a pretrained SAE loads: the job checks again.
    with pytest.raises(ConfigError, match=r"layers.2.features: feature ids \[16\] out of range"):
        select_features([1, 16], layer=2, d_sae=16)


def test_features_frame_schema():
    df = features_frame(4, [3, 1])
    assert dict(df.schema) == {"layer": pl.Int32, "feature": pl.Int64}
    assert df.rows() == [(4, 3), (4, 1)]
