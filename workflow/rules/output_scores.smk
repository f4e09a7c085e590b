rule output_scores:
    input:
        model=f"{OUT}/model.json",
        sae=f"{OUT}/layers/{{layer}}/sae.json",
        logit_lens=f"{OUT}/layers/{{layer}}/logit_lens.parquet",
    output:
        scores=f"{OUT}/layers/{{layer}}/output_scores.parquet",
        by_prompt=f"{OUT}/layers/{{layer}}/output_scores_by_prompt.parquet",
    log:
        f"{OUT}/logs/output_scores/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/output_scores/{{layer}}.tsv"
    priority: LIGHT_PRIORITY
    conda:
        "../envs/saesteer.yaml"
    threads: LIGHT_THREADS
    resources:
        gpu=model_gpus,
        local_gpu=model_local_gpus,
        mem_mb=model_mem(5000),
    params:
        settings=section_settings("output_score"),
        device=MODEL["device"],
    shell:
        "saesteer output-scores --model {input.model} --sae {input.sae} "
        "--logit-lens {input.logit_lens} --settings {params.settings:q} "
        "--device {params.device} --out {output.scores} "
        "--out-by-prompt {output.by_prompt} 2> {log}"
