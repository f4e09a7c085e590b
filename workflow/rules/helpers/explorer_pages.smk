# What rule explorer_pages alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
EXPLORER_LAYER_ARTIFACTS = [
    "features",
    "logit_lens",
    "negative_logits",
    "input_scores",
    "densities",
    "output_scores",
    "activations",
    "generations",
    "gen_metrics",
    "best_factors",
]


def explorer_page_inputs(wildcards):
    """The layer's artifacts; a concept layer's descriptions and ratings too (not the
    paper's released ones: they are rated on another run's features)."""
    inputs = {
        "templates": TEMPLATES,
        "model": f"{OUT}/model.json",
        **{
            kind: f"{OUT}/layers/{wildcards.layer}/{kind}.parquet"
            for kind in EXPLORER_LAYER_ARTIFACTS
        },
    }
    if int(wildcards.layer) in EXPLORER_CONCEPT_LAYERS:
        for kind in ("concepts", "concept_ratings"):
            inputs[kind] = f"{OUT}/layers/{wildcards.layer}/{kind}.parquet"
    return inputs
