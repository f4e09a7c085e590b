"""Feature tables with known answers, shared by the aggregation's tests."""

import polars as pl

from saesteer.stats import BootstrapSettings

BOOTSTRAP = BootstrapSettings(bootstrap=2000, seed=0, live_only=True)


def steered_table(gs_high, gs_low, layers=(0, 16)):
    """Per layer, steered features above output score 0.1 with GenSuccess `gs_high` and
    below it with `gs_low`, all live, no strata (equal weights within a layer)."""
    rows = []
    for layer in layers:
        for i, gs in enumerate(gs_high + gs_low):
            rows.append(
                {
                    "layer": layer,
                    "depth": (layer + 1) / 18,
                    "feature": i,
                    "input_score": 0.0,
                    "input_score_chance": 0.2,
                    "output_score": 0.5 if i < len(gs_high) else 0.001,
                    "gen_success_20": gs,
                    "best_factor": 4.0 if gs else None,
                    "live": True,
                    "output_stratum": 0,
                }
            )
    table = pl.DataFrame(rows)
    return table.with_columns(
        steering_weight=pl.when(pl.col("gen_success_20").is_not_null()).then(1.0)
    )
