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


rule activations:
    input:
        unpack(activation_inputs),
    output:
        activations=f"{OUT}/layers/{{layer}}/activations.parquet",
        densities=f"{OUT}/layers/{{layer}}/densities.parquet",
    log:
        f"{OUT}/logs/activations/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/activations/{{layer}}.tsv"
    priority: LIGHT_PRIORITY
    conda:
        "../envs/saesteer.yaml"
    threads: LIGHT_THREADS if MINED else 1
    resources:
        gpu=model_gpus if MINED else 0,
        local_gpu=model_local_gpus if MINED else 0,
        mem_mb=5000 if MINED else 2000,
    params:
        settings=activation_settings(),
        optional=optional_inputs("model", "sae", "chunks", "residuals"),
        device=MODEL["device"],
    shell:
        "saesteer activations --layer {wildcards.layer} --features {input.features} "
        "{params.optional} --settings {params.settings:q} --device {params.device} "
        "--out {output.activations} --out-densities {output.densities} 2> {log}"
