# What rule activations alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
from saesteer.activations import export_files


def activation_settings():
    """The chosen source's settings only, so tuning another source reruns nothing."""
    source = ACTIVATIONS["source"]
    keep = {"source": source, "n_examples": ACTIVATIONS["n_examples"]}
    return canonical_json({**keep, source: ACTIVATIONS[source]})


def activation_inputs(wildcards):
    layer = f"{OUT}/layers/{wildcards.layer}"
    inputs = {"features": f"{layer}/features.parquet"}
    if MINED:
        inputs |= {
            "model": f"{OUT}/model.json",
            "sae": f"{layer}/sae.json",
            "chunks": f"{OUT}/corpus/chunks.parquet",
            "residuals": ancient(residual_file(wildcards.layer)),
        }
    if ACTIVATIONS["source"] == "bulk":
        # Export files are inputs, so replacing them re-imports.
        inputs["export"] = export_files(
            ACTIVATIONS["bulk"]["files"], int(wildcards.layer)
        )
    return inputs
