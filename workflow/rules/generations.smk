include: "helpers/generations.smk"


rule generations:
    input:
        unpack(generation_inputs),
    output:
        f"{OUT}/layers/{{layer}}/generations.parquet",
    log:
        f"{OUT}/logs/generations/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/generations/{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    threads: workflow.cores if SAMPLED else 1
    resources:
        gpu=model_gpus if SAMPLED else 0,
        local_gpu=model_local_gpus if SAMPLED else 0,
        mem_mb=model_mem(7000) if SAMPLED else 2000,
    params:
        settings=generation_settings,
        optional=optional_inputs("sae", "output_scores", "input_scores"),
        device=MODEL["device"],
    shell:
        "saesteer generations --layer {wildcards.layer} --model {input.model} "
        "--features {input.features} {params.optional} --settings {params.settings:q} "
        "--device {params.device} --out {output} 2> {log}"
