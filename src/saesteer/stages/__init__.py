"""The workflow's stages. A stage is one module here, one Snakemake rule and its rule file
(`workflow/rules/<stage>.smk`), and one subcommand (`saesteer <stage>`, with dashes), all
under one name. Each module exposes `run(...)`: keyword arguments for its input files, its
output files (`out...`) and its `settings` (a config section, as JSON on the command line);
`saesteer.cli` derives the subcommand's flags from that signature.

The table below is all the CLI imports to list the stages, so `saesteer --help` stays fast;
a stage's module (and torch) is imported only when it runs."""

STAGES = {
    "embedded_model": "convert an embedded model to safetensors, once",
    "model": "resolve the model, write model.json",
    "corpus": "build the text corpus (documents)",
    "tokenize_corpus": "tokenize the corpus once into packed chunks",
    "residuals": "cache block outputs of all layers in one pass",
    "train_sae": "train one layer's SAE with SAE-Lens",
    "sae": "resolve one layer's SAE, write sae.json",
    "sae_metrics": "SAE quality on held-out text",
    "features": "select one layer's features",
    "logit_lens": "top-k logit-lens tokens of each feature",
    "negative_logits": "each feature's lowest-logit tokens, for its page",
    "output_scores": "output scores of one layer's features",
    "activations": "top activating examples of one layer's features",
    "input_scores": "input scores of one layer's features",
    "generations": "steered generations over one layer's factor grid",
    "gen_metrics": "GenSuccess@k and perplexity of generations",
    "best_factors": "each feature's best steering factor",
    "aggregate": "join every layer's Parquet: features and summary",
    "plots": "the paper's figures from the aggregated tables",
    "findings": "the paper's findings on this run, JSON and HTML",
    "explorer_pages": "one layer's feature pages for the report's explorer",
    "explorer_index": "the explorer's sortable table of every feature",
    "manifest": "write the run manifest",
    "sae_sweep": "score one SAE sweep variant at one layer",
    "sae_sweep_table": "the SAE sweep's table, plot and gates",
    "concepts": "one layer's concepts: features and descriptions",
    "concept_generations": "answers steered by SAE, DiffMean and prompting",
    "concept_ratings": "rate answers: concept, instruction, fluency",
    "released_concepts": "the paper's released concept ratings, instructions and answers",
    "concept_table": "factor choice and Table 1 over all layers",
}

# The config keys a stage's rule passes as `--settings` where it passes fewer than the
# whole of its settings' sections (so that editing another key reruns nothing); the other
# rules pass whole sections. tests/test_rule_keys.py checks each list against the stage's
# settings dataclass: a key the stage reads but its rule left out would run at the
# schema's default whatever the user wrote.
RULE_KEYS: dict[str, dict[str, list[str]]] = {
    "model": {"model": ["source", "dtype"]},
    "corpus": {"corpus": ["sources", "files", "seed"]},
    "tokenize_corpus": {"corpus": ["context_size", "heldout_fraction", "max_tokens"]},
    "best_factors": {"best_factor": ["max_gen_success", "normalization"]},
    "aggregate": {"generation": ["output_strata"]},
    "concepts": {"concepts": ["max_concepts", "description"]},
    "concept_generations": {
        "concepts": [
            "instructions",
            "n_instructions",
            "n_select",
            "factors",
            "protocol",
            "temperature",
            "top_k",
            "max_new_tokens",
            "seed",
            "batch_size",
            "diffmean_examples",
        ]
    },
    "concept_ratings": {"concepts": ["judge"]},
    "concept_table": {"concepts": ["thresholds", "aggregation"], "findings": ["bootstrap", "seed"]},
}
