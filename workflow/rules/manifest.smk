rule manifest:
    input:
        model=f"{OUT}/model.json",
        saes=expand(f"{OUT}/layers/{{layer}}/sae.json", layer=LAYERS),
    output:
        f"{OUT}/manifest.json",
    log:
        f"{OUT}/logs/manifest.log",
    benchmark:
        f"{OUT}/benchmarks/manifest.tsv"
    conda:
        "../envs/saesteer.yaml"
    params:
        run=config["run"],
    shell:
        "saesteer manifest --run-name {params.run} --model {input.model} "
        "--sae {input.saes} --out {output} 2> {log}"
