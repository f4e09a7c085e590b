"""The run's results, aggregated over every layer.

- `join`: every layer's Parquet joined into one row per feature (features.parquet)
- `summary`: the per-layer summary (summary.parquet)
- `filtering`: mean GenSuccess@20 of the stratified steered sample, kept by output score
- `findings`: the paper's findings with intervals and verdicts (findings.json)
"""
