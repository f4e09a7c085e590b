rule activations:
    input:
        unpack(activation_inputs),
    output:
        f"{OUT}/layers/{{layer}}/activations.parquet",
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
        mem_mb=5000 if MINED else 2000,
    params:
        settings=activation_settings(),
        mining=lambda wildcards, input: (
            f"--model {input.model} --sae {input.sae} --chunks {input.chunks} "
            f"--residuals {input.residuals}"
            if MINED
            else ""
        ),
        device=MODEL["device"],
    shell:
        "saesteer activations --layer {wildcards.layer} --features {input.features} "
        "--settings {params.settings:q} {params.mining} --device {params.device} "
        "--out {output} 2> {log}"


rule input_scores:
    input:
        model=f"{OUT}/model.json",
        logit_lens=f"{OUT}/layers/{{layer}}/logit_lens.parquet",
        activations=f"{OUT}/layers/{{layer}}/activations.parquet",
        # The corpus's frequent tokens give the chance level, when the run has a corpus
        # (mined examples or trained SAEs); else it is null.
        chunks=[f"{OUT}/corpus/chunks.parquet"] if USES_CORPUS else [],
    output:
        f"{OUT}/layers/{{layer}}/input_scores.parquet",
    log:
        f"{OUT}/logs/input_scores/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/input_scores/{{layer}}.tsv"
    priority: LIGHT_PRIORITY
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=2000,
    params:
        settings=canonical_json(config["input_score"]),
        chunks=lambda wildcards, input: (
            f"--chunks {input.chunks}" if input.chunks else ""
        ),
    shell:
        "saesteer input-score --model {input.model} --logit-lens {input.logit_lens} "
        "--activations {input.activations} {params.chunks} "
        "--settings {params.settings:q} "
        "--out {output} 2> {log}"
