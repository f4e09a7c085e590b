# What rule gen_metrics alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
# A separate perplexity evaluator (gen_metrics.evaluator) is counted as another 20 GB in
# 16 bits, 40 GB in float32 (the paper's Gemma-2-9B evaluator is 37 GB in float32).
EVALUATOR_MB = (
    (40000 if MODEL["dtype"] == "float32" else 20000)
    if config["gen_metrics"]["evaluator"]
    else 0
)
