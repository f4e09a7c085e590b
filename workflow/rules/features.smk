from saesteer.features import read_feature_file


def feature_settings(wildcards):
    """This layer's feature setting; a feature file is read so only this layer's entry counts."""
    spec = layer_settings(config, wildcards.layer)["features"]
    if isinstance(spec, dict) and "file" in spec:
        spec = read_feature_file(spec["file"], int(wildcards.layer))
    return canonical_json(spec)


rule features:
    input:
        sae=f"{OUT}/layers/{{layer}}/sae.json",
    output:
        f"{OUT}/layers/{{layer}}/features.parquet",
    log:
        f"{OUT}/logs/features/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/features/{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=1000,
    params:
        settings=feature_settings,
    shell:
        "saesteer features --layer {wildcards.layer} --sae {input.sae} "
        "--settings {params.settings:q} --out {output} 2> {log}"
