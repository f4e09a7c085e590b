"""Concept steering, the paper's Table 1 (the AxBench protocol): concept descriptions,
instructions, steered answers (SAE, DiffMean, prompting), judges, and the table."""
