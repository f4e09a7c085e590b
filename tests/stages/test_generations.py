"""Stage `generations` by hand: `saesteer generations`, called as the rule called it,
samples the steered grid exactly as the rule did."""

from pathlib import Path

import polars as pl
import pytest

from saesteer.errors import ConfigError
from saesteer.settings import settings_for
from saesteer.stages import generations
from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/layers/2/generations.parquet"
)


@pytest.mark.workflow
def test_live_only_steers_live_features_only(tiny_run, tmp_path, monkeypatch):
    workdir, _ = tiny_run
    monkeypatch.chdir(workdir)
    layer = Path("results/tiny/layers/1")
    scores = pl.read_parquet(layer / "input_scores.parquet")
    live = set(scores.filter(pl.col("input_score").is_not_null())["feature"].to_list())
    settings = settings_for(
        generations.GenerationSettings,
        factors=[0.0, 2.0],
        prefixes=["w1 w2"],
        n_prefixes=1,
        max_features=6,
        max_new_tokens=2,
        live_only=True,
    )
    common = {
        "layer": 1,
        "model": Path("results/tiny/model.json"),
        "sae": layer / "sae.json",
        "features": layer / "features.parquet",
        "settings": settings,
        "device": "cpu",
    }
    out = tmp_path / "generations.parquet"
    generations.run(**common, input_scores=layer / "input_scores.parquet", out=out)
    steered = set(pl.read_parquet(out)["feature"].to_list())
    assert steered and steered <= live
    assert len(steered) == min(6, len(live))
    with pytest.raises(ConfigError, match="input_scores"):
        generations.run(**common, out=tmp_path / "refused.parquet")
    assert not (tmp_path / "refused.parquet").exists()
