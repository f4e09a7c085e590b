rule findings:
    input:
        templates=TEMPLATES,
        features=f"{OUT}/features.parquet",
    output:
        json=f"{OUT}/findings.json",
        html=report(
            f"{OUT}/findings.html",
            caption="../report/findings.rst",
            category="Findings",
        ),
    log:
        f"{OUT}/logs/findings.log",
    benchmark:
        f"{OUT}/benchmarks/findings.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=1000,
    params:
        run=config["run"],
        settings=section_settings("findings"),
    shell:
        "saesteer findings --run-name {params.run} --features {input.features} "
        "--settings {params.settings:q} --out-json {output.json} --out-html {output.html} 2> {log}"
