"""Concept steering, the paper's Table 1 (the AxBench protocol): concept descriptions,
instructions, steered answers (SAE, DiffMean, prompting), judges, and the table."""

import polars as pl

# One answer per row (concept_generations.parquet). Here, not in `answers`, so that what
# reads answers (ratings, the table) does not import torch to know their columns.
CONCEPT_GENERATIONS_SCHEMA = {
    "layer": pl.Int32,
    "method": pl.Utf8,  # sae | diffmean | prompting
    "feature": pl.Int64,
    "factor": pl.Float64,  # 0.0 for prompting (no steering)
    "instruction_id": pl.Int32,  # position in the concept's instructions
    "split": pl.Utf8,  # "select" (chooses the factor) or "test"
    "instruction": pl.Utf8,
    "response": pl.Utf8,  # the generated continuation
    "text": pl.Utf8,  # what the judge rates (see `judged_text`)
    "n_tokens": pl.Int32,
    "seed": pl.Int64,
}
