"""`saesteer <step> ...`: the one entry point every workflow rule calls."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from saesteer import __version__
from saesteer.activations import ActivationsError
from saesteer.config import DEFAULT_SCHEMA, ConfigError
from saesteer.io import read_json, write_json, write_parquet
from saesteer.judges.base import JudgeError
from saesteer.models import ModelError
from saesteer.preflight import ArtifactError, read_artifact
from saesteer.released import ReleasedDataError
from saesteer.residuals import ResidualsError
from saesteer.saes import SaeError

log = logging.getLogger("saesteer")


def cmd_check_config(args) -> None:
    import yaml

    from saesteer.config import configured_layers, load_config

    config = load_config(args.config, args.schema, check_device=not args.no_device_check)
    # Exactly what the workflow runs with `--configfile FILE`: the file over the schema's
    # defaults, nothing else.
    print(f"# {args.config}: ok, run {config['run']!r}, layers {configured_layers(config)}")
    print(yaml.safe_dump(config, sort_keys=True), end="")


def cmd_embedded(args) -> None:
    from saesteer.models import EmbeddedSource

    log.info("embedded model at %s", EmbeddedSource(args.name).resolve(Path(args.resources)))


def cmd_model(args) -> None:
    from transformers import AutoConfig

    from saesteer.models import model_source

    path = model_source(args.source).resolve(Path(args.resources))
    cfg = AutoConfig.from_pretrained(path).get_text_config()
    info = {
        "source": args.source,
        "path": str(Path(path).resolve()),
        "dtype": args.dtype,
        "n_layers": cfg.num_hidden_layers,
        "d_model": cfg.hidden_size,
        "vocab_size": cfg.vocab_size,
    }
    write_json(info, args.out)
    log.info("model %s -> %s", args.source, info["path"])


def cmd_sae(args) -> None:
    from saesteer.saes import sae_source

    spec = json.loads(args.spec)
    descriptor = sae_source(spec["source"]).describe(spec, args.layer)
    write_json(descriptor, args.out)
    log.info("layer %d: %s", args.layer, descriptor)


def cmd_features(args) -> None:
    from saesteer.features import FEATURES_SCHEMA, features_frame, select_features

    d_sae = read_json(args.sae)["d_sae"]
    ids = select_features(json.loads(args.spec), args.layer, d_sae)
    write_parquet(features_frame(args.layer, ids), args.out, FEATURES_SCHEMA)
    log.info("layer %d: %d features", args.layer, len(ids))


def cmd_logit_lens(args) -> None:

    from saesteer.logit_lens import LOGIT_LENS_SCHEMA, logit_lens_frame, logit_lens_topk

    features = read_artifact(args.features)["feature"].to_list()
    model, tokenizer, sae, layer = _load_layer(args.model, args.sae, args.device)
    ids, probs = logit_lens_topk(model, sae.W_dec, features, args.top_k, args.batch_size)
    frame = logit_lens_frame(layer, features, ids, probs, tokenizer)
    write_parquet(frame, args.out, LOGIT_LENS_SCHEMA)
    log.info("layer %d: logit lens of %d features", layer, len(features))


def _check_fit(model_info: dict, descriptor: dict) -> None:
    if descriptor["d_in"] != model_info["d_model"]:
        raise ConfigError(
            f"layer {descriptor['layer']}: SAE d_in={descriptor['d_in']} does not match "
            f"model d_model={model_info['d_model']}"
        )


def _load_layer(model_json: str, sae_json: str, device: str):
    """The model and this layer's SAE on the model's device, after checking they fit."""
    from saesteer.models import load_model
    from saesteer.saes import load_sae

    model_info, descriptor = read_json(model_json), read_json(sae_json)
    _check_fit(model_info, descriptor)
    model, tokenizer = load_model(model_info["path"], model_info["dtype"], device)
    sae = load_sae(descriptor, device=str(next(model.parameters()).device))
    return model, tokenizer, sae, descriptor["layer"]


def _load_sae_only(model_json: str, sae_json: str, device: str):
    """The tokenizer and this layer's SAE, for stages that read cached residuals instead
    of running the model."""
    from transformers import AutoTokenizer

    from saesteer.models import resolve_device
    from saesteer.saes import load_sae

    model_info, descriptor = read_json(model_json), read_json(sae_json)
    _check_fit(model_info, descriptor)
    tokenizer = AutoTokenizer.from_pretrained(model_info["path"])
    sae = load_sae(descriptor, device=resolve_device(device))
    return tokenizer, sae, descriptor["layer"]


def cmd_output_score(args) -> None:
    import polars as pl
    import torch

    from saesteer.output_score import (
        OUTPUT_SCORES_BY_PROMPT_SCHEMA,
        OUTPUT_SCORES_SCHEMA,
        OutputScoreSettings,
        score_output,
    )

    settings = OutputScoreSettings.from_config(json.loads(args.settings))
    lens = read_artifact(args.logit_lens).filter(pl.col("rank") < settings.top_k)
    lens = lens.sort("feature", "rank", maintain_order=True)
    features = lens["feature"].unique(maintain_order=True).to_list()
    token_ids = torch.tensor(lens["token_id"].to_list()).reshape(len(features), -1)
    if token_ids.shape[1] != settings.top_k:
        raise ConfigError(
            f"{args.logit_lens}: has {token_ids.shape[1]} tokens per feature, "
            f"output_score.top_k needs {settings.top_k}"
        )
    model, tokenizer, sae, layer = _load_layer(args.model, args.sae, args.device)
    scores, by_prompt = score_output(model, tokenizer, sae, layer, features, token_ids, settings)
    write_parquet(by_prompt, args.out_by_prompt, OUTPUT_SCORES_BY_PROMPT_SCHEMA)
    write_parquet(scores, args.out, OUTPUT_SCORES_SCHEMA)
    top = scores.sort("output_score", descending=True).head(5)
    log.info(
        "layer %d: %d features, median output score %.4g, top %s",
        layer,
        scores.height,
        scores["output_score"].median(),
        dict(zip(top["feature"], top["output_score"].round(4), strict=True)),
    )
    if scores["n_robustness_prompts"].max() > 0:
        pair = [pl.col("output_score"), pl.col("robustness_mean")]
        pearson, spearman = scores.select(
            pl.corr(*pair).alias("pearson"), pl.corr(*pair, method="spearman").alias("spearman")
        ).row(0)
        log.info(
            "layer %d: main prompt vs mean of %d robustness prompts: pearson %.3f, spearman %.3f",
            layer,
            scores["n_robustness_prompts"].max(),
            pearson,
            spearman,
        )


def cmd_activations(args) -> None:

    from saesteer.activations import ACTIVATIONS_SCHEMA, activations_frame

    settings = json.loads(args.settings)
    features = read_artifact(args.features)["feature"].to_list()
    source = ACTIVATION_SOURCES[settings["source"]]
    examples = source(args, settings, features)
    frame = activations_frame(args.layer, examples)
    write_parquet(frame, args.out, ACTIVATIONS_SCHEMA)
    counts = [len(e) for e in examples.values()]
    log.info(
        "layer %d: %d examples of %d features from %s (%d features without any, "
        "median %d examples per feature)",
        args.layer,
        frame.height,
        len(features),
        settings["source"],
        counts.count(0),
        sorted(counts)[len(counts) // 2],
    )


def _mined_activations(args, settings: dict, features: list[int]):
    import torch

    from saesteer.corpus import read_chunks
    from saesteer.mining import MiningSettings, mine_top_examples, top_examples_by_feature
    from saesteer.residuals import read_residuals

    mining = MiningSettings.from_config({**settings["mine"], "n_examples": settings["n_examples"]})
    if not (args.model and args.sae and args.chunks and args.residuals):
        raise ConfigError("activations.source mine: needs --model, --sae, --chunks and --residuals")
    tokenizer, sae, layer = _load_sae_only(args.model, args.sae, args.device)
    chunks = read_chunks(args.chunks, "train")
    if chunks.size == 0:
        raise ConfigError(f"activations.source mine: {args.chunks} has no train chunks")
    if mining.max_tokens is not None:
        chunks = chunks[: max(1, mining.max_tokens // chunks.shape[1])]
    residuals = read_residuals(args.residuals, "train", layer, len(chunks))
    top = mine_top_examples(
        residuals,
        sae,
        torch.from_numpy(chunks),
        features,
        tokenizer.all_special_ids,
        mining,
        desc=f"mining layer {layer}",
    )
    return top_examples_by_feature(top, features, tokenizer)


def _api_activations(args, settings: dict, features: list[int]):
    from saesteer.activations import strongest_first
    from saesteer.neuronpedia import NeuronpediaSettings, fetch_features

    api = NeuronpediaSettings.from_config(settings["neuronpedia"])
    examples = fetch_features(api, args.layer, features)
    return {f: strongest_first(e, settings["n_examples"]) for f, e in examples.items()}


def _bulk_activations(args, settings: dict, features: list[int]):
    from saesteer.activations import export_files, import_bulk_export

    bulk = settings["bulk"]
    files = export_files(bulk["files"], args.layer)
    source_id = bulk["source"].format(layer=args.layer)
    return import_bulk_export(files, source_id, features, settings["n_examples"])


ACTIVATION_SOURCES = {
    "mine": _mined_activations,
    "neuronpedia": _api_activations,
    "bulk": _bulk_activations,
}


def cmd_input_score(args) -> None:
    from transformers import AutoTokenizer

    from saesteer.corpus import read_chunks
    from saesteer.input_score import (
        INPUT_SCORES_SCHEMA,
        InputScoreSettings,
        frequent_tokens,
        score_input,
    )

    settings = InputScoreSettings.from_config(json.loads(args.settings))
    tokenizer = AutoTokenizer.from_pretrained(read_json(args.model)["path"])
    frequent = None
    if args.chunks:
        chunks = read_chunks(args.chunks, "train")
        frequent = frequent_tokens(chunks, settings.top_k, tokenizer.all_special_ids)
    lens = read_artifact(args.logit_lens)
    scores = score_input(read_artifact(args.activations), lens, tokenizer, settings, frequent)
    write_parquet(scores, args.out, INPUT_SCORES_SCHEMA)
    scored = scores.drop_nulls("input_score")
    log.info(
        "layer %d: %d of %d features scored (>= %d examples), median input score %s, "
        "chance level %s",
        scores["layer"][0],
        scored.height,
        scores.height,
        settings.min_examples,
        None if scored.is_empty() else round(scored["input_score"].median(), 4),
        None if scores.is_empty() else scores["input_score_chance"][0],
    )


def cmd_generate(args) -> None:
    import polars as pl

    from saesteer.generation import GENERATIONS_SCHEMA, SamplingSettings, generate_grid
    from saesteer.released import read_released_generations
    from saesteer.steered_sample import select_steered

    settings = json.loads(args.settings)
    scores = None
    if args.output_scores:
        frame = read_artifact(args.output_scores)
        scores = dict(zip(frame["feature"].to_list(), frame["output_score"].to_list(), strict=True))
    features = select_steered(
        read_artifact(args.features)["feature"].to_list(),
        settings["max_features"],
        scores,
        settings.get("output_strata", []),
    )
    log.info("steering features %s", features)
    factors, prefixes = settings["factors"], settings["prefixes"]
    if settings["source"] == "released":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(read_json(args.model)["path"])
        template = settings["released"]["files"]
        frame = read_released_generations(
            template, args.layer, features, factors, prefixes, tokenizer
        )
    else:
        model, tokenizer, sae, layer = _load_layer(args.model, args.sae, args.device)
        sampling = SamplingSettings.from_config(settings)
        frame = generate_grid(
            model, tokenizer, sae, layer, features, factors, prefixes, settings["seed"], sampling
        )
    write_parquet(frame, args.out, GENERATIONS_SCHEMA)
    stopped = frame.group_by("factor").agg(pl.col("n_tokens").mean()).sort("factor")
    log.info(
        "layer %d: %d texts (%d features x %d factors x %d prefixes, %s); mean tokens by factor %s",
        args.layer,
        frame.height,
        len(features),
        len(factors),
        len(prefixes),
        settings["source"],
        dict(zip(stopped["factor"], stopped["n_tokens"].round(1), strict=True)),
    )


def cmd_gen_metrics(args) -> None:
    import polars as pl
    from transformers import AutoTokenizer

    from saesteer.gen_metrics import GEN_METRICS_SCHEMA, score_generations
    from saesteer.models import load_model, model_source

    settings = json.loads(args.settings)
    run_model = read_json(args.model)
    evaluator_spec = settings.get("evaluator") or run_model["source"]
    path = run_model["path"]
    if evaluator_spec != run_model["source"]:
        path = model_source(evaluator_spec).resolve(Path(args.resources))
    evaluator, evaluator_tokenizer = load_model(path, run_model["dtype"], args.device)
    tokenizer = evaluator_tokenizer  # GenSuccess counts in the run's tokens
    if path != run_model["path"]:
        tokenizer = AutoTokenizer.from_pretrained(run_model["path"])
    metrics = score_generations(
        read_artifact(args.generations),
        read_artifact(args.logit_lens),
        tokenizer,
        evaluator,
        evaluator_tokenizer,
        evaluator_spec,
        settings["perplexity_of"],
        settings["batch_size"],
    )
    write_parquet(metrics, args.out, GEN_METRICS_SCHEMA)
    by_factor = metrics.group_by("factor").agg(
        pl.col("gen_success_20").mean(), pl.col("perplexity").median()
    )
    for factor, gs20, ppl in by_factor.sort("factor").iter_rows():
        log.info(
            "layer %d, factor %g: mean GenSuccess@20 %.3f, median perplexity %.1f",
            metrics["layer"][0],
            factor,
            gs20,
            ppl if ppl is not None else float("nan"),
        )


def cmd_best_factors(args) -> None:

    from saesteer.best_factor import BEST_FACTORS_SCHEMA, BestFactorSettings, choose_best_factors
    from saesteer.released import read_released_best_factors

    settings = BestFactorSettings.from_config(json.loads(args.settings))
    metrics = read_artifact(args.gen_metrics)
    layer = metrics["layer"][0]
    released = None
    if settings.released:
        released = read_released_best_factors(settings.released, layer)
    best = choose_best_factors(metrics, settings, released)
    write_parquet(best, args.out, BEST_FACTORS_SCHEMA)
    counts = best["best_factor"].value_counts().sort("best_factor")
    log.info(
        "layer %d: best factors %s (%d features without a candidate)",
        layer,
        dict(counts.drop_nulls().iter_rows()),
        best["best_factor"].null_count(),
    )


def cmd_aggregate(args) -> None:
    from saesteer.aggregate import (
        FEATURE_TABLE_SCHEMA,
        LAYER_FILES,
        SUMMARY_SCHEMA,
        feature_table,
        summary_table,
    )

    run_dir = Path(args.run_dir)
    kinds = ["features", "logit_lens", "sae_metrics", *LAYER_FILES]
    layers = {
        layer: {kind: run_dir / "layers" / str(layer) / f"{kind}.parquet" for kind in kinds}
        for layer in args.layers
    }
    for layer, files in layers.items():
        absent = [kind for kind, path in files.items() if not path.is_file()]
        if absent:
            log.info("layer %d: no %s (their columns stay null)", layer, ", ".join(absent))
    features = feature_table(layers, read_json(args.model)["n_layers"], args.output_strata)
    summary = summary_table(features)
    write_parquet(features, args.features_out, FEATURE_TABLE_SCHEMA)
    write_parquet(summary, args.summary_out, SUMMARY_SCHEMA)
    log.info("%d features of %d layers", features.height, len(layers))


def cmd_plots(args) -> None:

    from saesteer.plots import write_plots

    paths = write_plots(read_artifact(args.features), read_artifact(args.summary), args.out)
    log.info("wrote %s", ", ".join(p.name for p in paths))


def cmd_findings(args) -> None:

    from saesteer.aggregate import findings
    from saesteer.io import atomic_path
    from saesteer.plots import findings_html

    found = findings(read_artifact(args.features), read_artifact(args.summary))
    write_json(found, args.out_json)
    with atomic_path(args.out_html) as tmp:
        tmp.write_text(findings_html(found, args.run))
    log.info("findings: %s", json.dumps(found))


def cmd_concepts(args) -> None:

    from saesteer.concepts import CONCEPTS_SCHEMA, concept_table

    settings = json.loads(args.settings)
    features = read_artifact(args.features)["feature"].to_list()[: settings["max_concepts"]]
    explanations = {}
    if settings["description"] == "neuronpedia":
        from saesteer.neuronpedia import NeuronpediaSettings, feature_explanations

        neuronpedia = NeuronpediaSettings.from_config(settings["neuronpedia"])
        explanations = feature_explanations(neuronpedia, args.layer, features)
        without = [f for f in features if f not in explanations]
        if without:
            log.warning(
                "layer %d: %d of %d features have no Neuronpedia explanation, their "
                "descriptions are derived: %s",
                args.layer,
                len(without),
                len(features),
                without[:20],
            )
    frame = concept_table(
        args.layer,
        features,
        read_artifact(args.logit_lens),
        read_artifact(args.activations),
        explanations,
    )
    write_parquet(frame, args.out, CONCEPTS_SCHEMA)
    for feature, concept, source in frame.drop("layer").iter_rows():
        log.info("layer %d, feature %d (%s): %s", args.layer, feature, source, concept)


def cmd_concept_generate(args) -> None:
    import polars as pl
    import torch

    from saesteer.concepts import CONCEPT_GENERATIONS_SCHEMA, generate_concepts
    from saesteer.diffmean import diffmean_directions, example_token_ids
    from saesteer.generation import SamplingSettings
    from saesteer.instructions import concept_instructions
    from saesteer.steering import steering_directions

    settings = json.loads(args.settings)
    concepts = read_artifact(args.concepts)
    features = concepts["feature"].to_list()
    instructions = concept_instructions(
        settings["instructions"], args.layer, features, settings["n_instructions"], settings["seed"]
    )
    model, tokenizer, sae, layer = _load_layer(args.model, args.sae, args.device)
    sae_rows = steering_directions(sae, features)
    top = (
        read_artifact(args.activations)
        .filter(pl.col("feature").is_in(features))
        .sort("feature", "example")
        .group_by("feature", maintain_order=True)
        .head(settings["diffmean_examples"])
    )
    diffmean = diffmean_directions(
        model, tokenizer, layer, example_token_ids(top, tokenizer), features, sae_rows.norm(dim=-1)
    )
    sae_by_feature = dict(zip(features, sae_rows, strict=True))
    cosine = {
        f: round(torch.nn.functional.cosine_similarity(sae_by_feature[f], d, dim=0).item(), 3)
        for f, d in diffmean.items()
    }
    log.info("layer %d: cosine(DiffMean, SAE direction) by feature %s", layer, cosine)
    sampling = SamplingSettings(
        temperature=settings["temperature"],
        top_k=settings["top_k"],
        max_new_tokens=settings["max_new_tokens"],
        batch_size=settings["batch_size"],
    )
    frame = generate_concepts(
        model,
        tokenizer,
        sae,
        layer,
        concepts,
        instructions,
        settings["factors"],
        {"sae": sae_by_feature, "diffmean": diffmean},
        settings["n_select"],
        settings["seed"],
        sampling,
        protocol=settings["protocol"],
    )
    write_parquet(frame, args.out, CONCEPT_GENERATIONS_SCHEMA)
    lengths = (
        frame.group_by("method", "factor").agg(pl.col("n_tokens").mean()).sort("method", "factor")
    )
    log.info("layer %d: %d answers; mean tokens %s", layer, frame.height, lengths.rows())


def cmd_concept_judge(args) -> None:
    import polars as pl

    from saesteer.concept_eval import RATINGS_SCHEMA, with_harmonic
    from saesteer.judges import Item, JudgeCache, judge_items, make_judge

    settings = json.loads(args.settings)
    generations = read_artifact(args.generations).join(
        read_artifact(args.concepts).select("layer", "feature", "concept"),
        on=["layer", "feature"],
    )
    judge = make_judge(settings["judge"], read_json(args.model), args.device, args.resources)
    items = [
        Item(concept, instruction, text)
        for concept, instruction, text in generations.select(
            "concept", "instruction", "text"
        ).iter_rows()
    ]
    result = judge_items(judge, items, JudgeCache(settings["judge"]["cache_dir"], judge))
    ratings = with_harmonic(
        generations.with_columns(
            concept_rating=pl.Series(result["concept"], dtype=pl.Float64),
            instruction_rating=pl.Series(result["instruction"], dtype=pl.Float64),
            fluency_rating=pl.Series(result["fluency"], dtype=pl.Float64),
            judge=pl.lit(judge.name),
            judge_proxy=pl.lit(judge.proxy),
        )
    )
    write_parquet(ratings, args.out, RATINGS_SCHEMA)
    log.info(
        "judge %s%s: %d ratings from the cache, %d new",
        judge.name,
        " (PROXY, not an LLM judge)" if judge.proxy else "",
        result["cache_hits"],
        result["rated"],
    )


def cmd_concept_table(args) -> None:
    import polars as pl

    from saesteer.concept_eval import (
        CONCEPT_SCORES_SCHEMA,
        CONCEPT_TABLE_SCHEMA,
        RELEASED_JUDGE,
        concept_scores,
        released_scores,
        table_html,
        table_rows,
    )
    from saesteer.io import atomic_path

    settings = json.loads(args.settings)
    if bool(args.ratings) == bool(args.released):
        raise ConfigError("concept-table: give --ratings or --released, not both")
    output_scores = pl.concat([read_artifact(p) for p in args.output_scores], how="diagonal")
    if args.released:
        layers = output_scores["layer"].unique().to_list()
        scores = released_scores(
            read_artifact(args.released), output_scores, layers, settings["aggregation"]
        )
        unscored = scores.filter(pl.col("output_score").is_null())
        if unscored.height:
            # They count in the unfiltered row but can pass no threshold.
            log.warning(
                "%d released concepts have no output score in this run (not in its feature "
                "lists), e.g. %s: they are in the no-filter row only",
                unscored.height,
                unscored.select("layer", "feature").head(5).rows(),
            )
        table = table_rows(scores, settings["thresholds"], RELEASED_JUDGE, False)
    else:
        ratings = pl.concat([read_artifact(p) for p in args.ratings])
        judges = ratings["judge"].unique().to_list()
        if len(judges) != 1:
            raise ConfigError(f"concept ratings from {len(judges)} judges {judges}: rerun with one")
        scores = concept_scores(ratings, output_scores, settings["aggregation"])
        proxy = bool(ratings["judge_proxy"][0])
        table = table_rows(scores, settings["thresholds"], judges[0], proxy)
    write_parquet(scores, args.scores_out, CONCEPT_SCORES_SCHEMA)
    write_parquet(table, args.table_out, CONCEPT_TABLE_SCHEMA)
    with atomic_path(args.html_out) as tmp:
        tmp.write_text(
            f"<!DOCTYPE html><meta charset='utf-8'>{table_html(table, settings['aggregation'])}\n"
        )
    for layer, row, n, score in table.select("layer", "row", "n_concepts", "score").iter_rows():
        log.info("layer %d, %s: %s over %d concepts", layer, row, score, n)


def cmd_import_released_concepts(args) -> None:
    from saesteer.released_concepts import (
        RELEASED_CONCEPTS_SCHEMA,
        import_released_concepts,
        summary,
    )

    frame = import_released_concepts(args.data_dir, args.model_dir, args.n_select)
    write_parquet(frame, args.out, RELEASED_CONCEPTS_SCHEMA)
    log.info("%s: %d released concepts; %s", args.out, frame.height, summary(frame))


def cmd_corpus(args) -> None:
    from saesteer.corpus import DOCUMENTS_SCHEMA, build_documents

    documents = build_documents(args.sources, args.files, seed=args.seed)
    write_parquet(documents, args.out, DOCUMENTS_SCHEMA)
    mb = documents["text"].str.len_bytes().sum() / 1e6
    log.info(
        "corpus: %d documents, %.1f MB, by source %s",
        documents.height,
        mb,
        dict(documents["source"].value_counts().iter_rows()),
    )


def cmd_tokenize(args) -> None:
    from transformers import AutoTokenizer

    from saesteer.corpus import CHUNKS_SCHEMA, tokenize_documents

    tokenizer = AutoTokenizer.from_pretrained(read_json(args.model)["path"])
    chunks = tokenize_documents(
        read_artifact(args.documents),
        tokenizer,
        args.context_size,
        args.heldout_fraction,
        args.max_tokens,
    )
    write_parquet(chunks, args.out, CHUNKS_SCHEMA)
    log.info(
        "tokenized: %d chunks of %d tokens (%s)",
        chunks.height,
        args.context_size,
        dict(chunks["split"].value_counts().iter_rows()),
    )


def cmd_residuals(args) -> None:
    from saesteer.corpus import read_chunks
    from saesteer.models import load_model
    from saesteer.residuals import cache_residuals

    model_info = read_json(args.model)
    train = read_chunks(args.chunks, "train")
    heldout = read_chunks(args.chunks, "heldout")
    chunks = {
        "train": train if args.train_chunks is None else train[: args.train_chunks],
        "heldout": heldout[: args.heldout_chunks],
    }
    for split, n in (("train", args.train_chunks), ("heldout", args.heldout_chunks)):
        if n and len(chunks[split]) < n:
            log.warning(
                "%s has %d %s chunks, fewer than the %d asked",
                args.chunks,
                len(chunks[split]),
                split,
                n,
            )
    model, _ = load_model(model_info["path"], model_info["dtype"], args.device)
    cache_residuals(model, model_info["path"], args.layers, chunks, args.out, args.batch_size)


def cmd_train_sae(args) -> None:
    from transformers import AutoTokenizer

    from saesteer.corpus import read_chunks
    from saesteer.models import resolve_device
    from saesteer.residuals import read_residuals
    from saesteer.train import TrainSettings, train_sae

    settings = TrainSettings.from_config(json.loads(args.settings))
    chunks = read_chunks(args.chunks, "train")
    residuals = read_residuals(args.residuals, "train", args.layer)
    tokenizer = AutoTokenizer.from_pretrained(read_json(args.model)["path"])
    train_sae(
        residuals,
        chunks[: len(residuals)],
        tokenizer.all_special_ids,
        args.layer,
        settings,
        args.out,
        resolve_device(args.device),
    )


def cmd_sae_metrics(args) -> None:
    import polars as pl
    import torch

    from saesteer.corpus import read_chunks
    from saesteer.residuals import read_residuals
    from saesteer.sae_metrics import SAE_METRICS_SCHEMA, sae_metrics

    model, tokenizer, sae, layer = _load_layer(args.model, args.sae, args.device)
    chunks = read_chunks(args.chunks, "heldout")
    chunks = torch.from_numpy(chunks[: max(1, args.max_tokens // chunks.shape[1])])
    residuals = read_residuals(args.residuals, "heldout", layer, len(chunks))
    ce_chunks = max(1, args.ce_tokens // chunks.shape[1])
    metrics = sae_metrics(
        model,
        sae,
        layer,
        chunks,
        residuals,
        tokenizer.all_special_ids,
        ce_chunks,
        args.batch_size,
    )
    write_parquet(pl.DataFrame([metrics]), args.out, SAE_METRICS_SCHEMA)
    log.info("layer %d: %s", layer, metrics)


def cmd_manifest(args) -> None:
    saes = [read_json(p) for p in args.sae]
    manifest = {
        "run": args.run,
        "saesteer_version": __version__,
        "model": read_json(args.model),
        "layers": {str(d["layer"]): d for d in sorted(saes, key=lambda d: d["layer"])},
    }
    write_json(manifest, args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saesteer", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    steps = parser.add_subparsers(dest="step", required=True)

    def step(name, func, help):
        sub = steps.add_parser(name, help=help)
        sub.set_defaults(func=func)
        return sub

    p = step("check-config", cmd_check_config, "validate a run config, print it resolved")
    p.add_argument("config")
    p.add_argument("--schema", default=str(DEFAULT_SCHEMA))
    p.add_argument(
        "--no-device-check",
        action="store_true",
        help="skip checking model.device here (a login node that only submits jobs)",
    )

    p = step("embedded", cmd_embedded, "convert an embedded model to safetensors, once")
    p.add_argument("--name", required=True)
    p.add_argument("--resources", default="resources")

    p = step("model", cmd_model, "resolve the model, write model.json")
    p.add_argument("--source", required=True)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--resources", default="resources")
    p.add_argument("--out", required=True)

    p = step("sae", cmd_sae, "resolve one layer's SAE, write sae.json")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--spec", required=True, help="the layer's `sae` settings as JSON")
    p.add_argument("--out", required=True)

    p = step("features", cmd_features, "select one layer's features")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--sae", required=True)
    p.add_argument("--spec", required=True, help="the layer's `features` setting as JSON")
    p.add_argument("--out", required=True)

    p = step("logit-lens", cmd_logit_lens, "top-k logit-lens tokens of each feature")
    p.add_argument("--model", required=True)
    p.add_argument("--sae", required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)

    p = step("output-score", cmd_output_score, "output scores of one layer's features")
    p.add_argument("--model", required=True)
    p.add_argument("--sae", required=True)
    p.add_argument("--logit-lens", required=True)
    p.add_argument("--settings", default="{}", help="the `output_score` settings as JSON")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--out-by-prompt", required=True)

    p = step("activations", cmd_activations, "top activating examples of one layer's features")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--settings", required=True, help="the `activations` settings as JSON")
    p.add_argument("--model", help="model.json (source mine)")
    p.add_argument("--sae", help="the layer's sae.json (source mine)")
    p.add_argument("--chunks", help="the tokenized corpus (source mine)")
    p.add_argument("--residuals", help="the layer's residual cache (source mine)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)

    p = step("input-score", cmd_input_score, "input scores of one layer's features")
    p.add_argument("--model", required=True)
    p.add_argument("--logit-lens", required=True)
    p.add_argument("--activations", required=True)
    p.add_argument("--chunks", help="the tokenized corpus: its frequent tokens (chance level)")
    p.add_argument("--settings", default="{}", help="the `input_score` settings as JSON")
    p.add_argument("--out", required=True)

    p = step("generate", cmd_generate, "steered generations over one layer's factor grid")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--sae", help="the layer's sae.json (source sample)")
    p.add_argument("--features", required=True)
    p.add_argument(
        "--output-scores", help="the layer's output_scores.parquet (generation.output_strata)"
    )
    p.add_argument("--settings", required=True, help="the layer's `generation` settings as JSON")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)

    p = step("gen-metrics", cmd_gen_metrics, "GenSuccess@k and perplexity of generations")
    p.add_argument("--model", required=True, help="the run's model.json (its tokenizer)")
    p.add_argument("--generations", required=True)
    p.add_argument("--logit-lens", required=True)
    p.add_argument("--settings", required=True, help="the `gen_metrics` settings as JSON")
    p.add_argument("--resources", default="resources")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)

    p = step("best-factors", cmd_best_factors, "each feature's best steering factor")
    p.add_argument("--gen-metrics", required=True)
    p.add_argument("--settings", default="{}", help="the `best_factor` settings as JSON")
    p.add_argument("--out", required=True)

    p = step("aggregate", cmd_aggregate, "join every layer's Parquet: features and summary")
    p.add_argument("--run-dir", required=True, help="results/<run>")
    p.add_argument("--model", required=True)
    p.add_argument("--layers", type=int, nargs="+", required=True)
    p.add_argument(
        "--output-strata", type=float, nargs="*", default=[], help="generation.output_strata"
    )
    p.add_argument("--features-out", required=True)
    p.add_argument("--summary-out", required=True)

    p = step("plots", cmd_plots, "the paper's figures from the aggregated tables")
    p.add_argument("--features", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--out", required=True, help="directory for the PNG files")

    p = step("findings", cmd_findings, "the paper's findings on this run, JSON and HTML")
    p.add_argument("--run", required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--out-json", required=True)
    p.add_argument("--out-html", required=True)

    p = step("concepts", cmd_concepts, "one layer's concepts: features and descriptions")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--logit-lens", required=True)
    p.add_argument("--activations", required=True)
    p.add_argument("--settings", required=True, help="the `concepts` settings as JSON")
    p.add_argument("--out", required=True)

    p = step("concept-generate", cmd_concept_generate, "answers steered by SAE, DiffMean, prompt")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--sae", required=True)
    p.add_argument("--concepts", required=True)
    p.add_argument("--activations", required=True, help="DiffMean's concept texts")
    p.add_argument("--settings", required=True, help="the `concepts` settings as JSON")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)

    p = step("concept-judge", cmd_concept_judge, "rate answers: concept, instruction, fluency")
    p.add_argument("--model", required=True, help="the run's model.json (the proxy's LM)")
    p.add_argument("--generations", required=True)
    p.add_argument("--concepts", required=True)
    p.add_argument("--settings", required=True, help="the `concepts` settings as JSON")
    p.add_argument("--resources", default="resources")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)

    p = step("concept-table", cmd_concept_table, "factor choice and Table 1 over all layers")
    p.add_argument("--ratings", nargs="*", default=[], help="each layer's concept ratings")
    p.add_argument("--released", help="or the paper's (import-released-concepts)")
    p.add_argument("--output-scores", nargs="+", required=True)
    p.add_argument("--settings", required=True, help="the `concepts` settings as JSON")
    p.add_argument("--scores-out", required=True)
    p.add_argument("--table-out", required=True)
    p.add_argument("--html-out", required=True)

    p = step(
        "import-released-concepts",
        cmd_import_released_concepts,
        "the paper's released concept ratings, instructions and answers as Parquet",
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="the release's data/ folder")
    p.add_argument("out", metavar="OUT.parquet")
    p.add_argument("--model-dir", default="gemma_9b_it", help="under generated_texts/")
    p.add_argument("--n-select", type=int, default=5, help="instructions that chose the factor")

    p = step("corpus", cmd_corpus, "build the text corpus (documents)")
    p.add_argument("--sources", nargs="*", default=[])
    p.add_argument("--files", nargs="*", default=[])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = step("tokenize", cmd_tokenize, "tokenize the corpus once into packed chunks")
    p.add_argument("--model", required=True)
    p.add_argument("--documents", required=True)
    p.add_argument("--context-size", type=int, default=128)
    p.add_argument("--heldout-fraction", type=float, default=0.05)
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--out", required=True)

    p = step("residuals", cmd_residuals, "cache block outputs of all layers in one pass")
    p.add_argument("--model", required=True)
    p.add_argument("--chunks", required=True)
    p.add_argument("--layers", type=int, nargs="+", required=True)
    p.add_argument("--train-chunks", type=int, default=None, help="default: all of them")
    p.add_argument("--heldout-chunks", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", nargs="+", required=True, help="one file per layer, in order")

    p = step("train-sae", cmd_train_sae, "train one layer's SAE with SAE-Lens")
    p.add_argument("--model", required=True, help="model.json (the tokenizer's special ids)")
    p.add_argument("--chunks", required=True)
    p.add_argument("--residuals", required=True, help="the layer's residual cache")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--settings", default="{}", help="the layer's `sae.train` settings as JSON")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)

    p = step("sae-metrics", cmd_sae_metrics, "SAE quality on held-out text")
    p.add_argument("--model", required=True)
    p.add_argument("--sae", required=True)
    p.add_argument("--chunks", required=True)
    p.add_argument("--residuals", required=True, help="the layer's residual cache")
    p.add_argument("--max-tokens", type=int, default=65536, help="for reconstruction, L0, dead")
    p.add_argument("--ce-tokens", type=int, default=8192, help="for the CE metrics")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)

    p = step("manifest", cmd_manifest, "write the run manifest")
    p.add_argument("--run", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--sae", nargs="+", required=True)
    p.add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (
        ConfigError,
        ActivationsError,
        ReleasedDataError,
        JudgeError,
        ArtifactError,
        SaeError,
        ModelError,
        ResidualsError,
    ) as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
