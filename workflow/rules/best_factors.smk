include: "helpers/best_factors.smk"


rule best_factors:
    input:
        unpack(best_factor_inputs),
    output:
        f"{OUT}/layers/{{layer}}/best_factors.parquet",
    log:
        f"{OUT}/logs/best_factors/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/best_factors/{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=1000,
    params:
        settings=rule_settings("best_factors"),
        optional=optional_inputs("released"),
    shell:
        "saesteer best-factors --gen-metrics {input.gen_metrics} {params.optional} "
        "--settings {params.settings:q} --out {output} 2> {log}"
