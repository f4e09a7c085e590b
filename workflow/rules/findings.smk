rule findings:
    input:
        templates=TEMPLATES,
        features=f"{OUT}/features.parquet",
        summary=f"{OUT}/summary.parquet",
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
    shell:
        "saesteer findings --run-name {params.run} --features {input.features} "
        "--summary {input.summary} --out-json {output.json} --out-html {output.html} 2> {log}"
