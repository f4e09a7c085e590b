include: "helpers/activations.smk"


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
