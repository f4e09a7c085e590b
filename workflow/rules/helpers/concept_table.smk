# What rule concept_table alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
def concept_table_inputs(wildcards):
    """Each layer's ratings, or the paper's released ones; the run's output scores."""
    inputs = {"output_scores": layer_outputs("output_scores", CONCEPT_LAYERS)}
    if RELEASED_CONCEPTS:
        inputs["released"] = f"{OUT}/concepts/released_concepts.parquet"
    else:
        inputs["ratings"] = layer_outputs("concept_ratings", CONCEPT_LAYERS)
    return inputs
