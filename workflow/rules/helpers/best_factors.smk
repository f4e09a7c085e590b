# What rule best_factors alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
def best_factor_inputs(wildcards):
    inputs = {"gen_metrics": f"{OUT}/layers/{wildcards.layer}/gen_metrics.parquet"}
    if config["best_factor"]["released"]:
        inputs["released"] = config["best_factor"]["released"]
    return inputs
