rule sae_sweep_table:
    input:
        expand(
            f"{OUT}/sweep/{{variant}}/layers/{{layer}}",
            variant=SWEEP_VARIANTS,
            layer=LAYERS,
        ),
    output:
        table=f"{OUT}/sweep/sae_sweep.parquet",
        plot=report(
            f"{OUT}/sweep/sae_sweep.png",
            caption="../report/sae_sweep.rst",
            category="SAE sweep",
        ),
    log:
        f"{OUT}/logs/sae_sweep_table.log",
    benchmark:
        f"{OUT}/benchmarks/sae_sweep_table.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=1000,
    params:
        settings=canonical_json(
            {
                "gates": config["sae_sweep"]["gates"],
                "bootstrap": config["findings"]["bootstrap"],
                "seed": config["findings"]["seed"],
            }
        ),
    shell:
        "saesteer sae-sweep-table --folders {input} --settings {params.settings:q} "
        "--out {output.table} --out-plot {output.plot} 2> {log}"
