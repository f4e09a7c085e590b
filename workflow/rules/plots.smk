PLOTS = {
    "roles_across_layers": "Scores across layers",
    "output_threshold_curve": "Filtering by output score",
    "input_vs_output": "Scores across layers",
    "best_factor_histogram": "Steering",
    "gen_success_filtering": "Filtering by output score",
}
PLOT_CAPTIONS = [f"{workflow.basedir}/report/{name}.rst" for name in PLOTS]


rule plots:
    input:
        features=f"{OUT}/features.parquet",
        summary=f"{OUT}/summary.parquet",
        captions=PLOT_CAPTIONS,
    output:
        plots=[
            report(
                f"{OUT}/plots/{name}.png",
                caption=f"../report/{name}.rst",
                category=category,
            )
            for name, category in PLOTS.items()
        ],
        figures=report(
            f"{OUT}/figures.html",
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        f"{OUT}/logs/plots.log",
    benchmark:
        f"{OUT}/benchmarks/plots.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=2000,
    params:
        run=config["run"],
        settings=section_settings("findings"),
    shell:
        "saesteer plots --run-name {params.run} --features {input.features} "
        "--summary {input.summary} --captions {input.captions} "
        "--settings {params.settings:q} --out {output.plots} "
        "--out-figures {output.figures} 2> {log}"
