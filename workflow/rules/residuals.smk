include: "helpers/residuals.smk"


# One model pass over the corpus for every layer that reads residuals (training, mining,
# SAE metrics): a file per layer. Readers take their file as ancient(): a new layer reruns
# this job, which rewrites the other layers' files with the same content, and their
# trained SAEs, mined examples and metrics stay (what the cache holds is set by the model,
# the corpus and the sizes below; a change to the first two reruns the readers through
# model.json and chunks.parquet).
if RESIDUAL_LAYERS:

    rule residuals:
        input:
            model=f"{OUT}/model.json",
            chunks=f"{OUT}/corpus/chunks.parquet",
        output:
            [residual_file(layer) for layer in RESIDUAL_LAYERS],
        log:
            f"{OUT}/logs/residuals.log",
        benchmark:
            f"{OUT}/benchmarks/residuals.tsv"
        conda:
            "../envs/saesteer.yaml"
        threads: workflow.cores
        resources:
            gpu=model_gpus,
            local_gpu=model_local_gpus,
            mem_mb=model_mem(8000),
        params:
            settings=canonical_json(
                {
                    "layers": RESIDUAL_LAYERS,
                    "train_chunks": residual_sizes().train_chunks,
                    "heldout_chunks": residual_sizes().heldout_chunks,
                }
            ),
            device=MODEL["device"],
        shell:
            "saesteer residuals --model {input.model} --chunks {input.chunks} "
            "--settings {params.settings:q} --device {params.device} --out {output} "
            "2> {log}"
