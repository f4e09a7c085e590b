"""`saesteer estimate CONFIG`: a run's size before it starts.

Jobs per rule come from the workflow's own DAG (a Snakemake dry run). The work of each
stage is counted from the config and the model's shapes: forward tokens, tokens to
generate, FLOPs (saesteer.costs, as the benchmarks count them), judge calls and
downloads. Wall time is projected two ways:
- on this machine, from the achieved GFLOP/s `make bench` measured for each path (a rates
  file; the one shipped was measured on the 2-core reference machine);
- on a named GPU, from its peak FLOP/s at the same share of peak the benchmarks reached.

Generated tokens are an upper bound (every text runs to max_new_tokens; most stop at the
first "." sooner). Prompt lengths are counted at 4 characters a token."""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from saesteer import costs
from saesteer.config import layer_settings, read_config, resolve_config
from saesteer.costs import GPUS, Shapes, model_shapes
from saesteer.dryrun import MissingInput, dag_jobs, stand_ins
from saesteer.errors import ConfigError
from saesteer.features import read_feature_file
from saesteer.prompts import OUTPUT_SCORE_PROMPT, PREFIXES, resolve_prefixes

CHARS_PER_TOKEN = 4
TOTALS = ("jobs", "flops", "forward_tokens", "generated_tokens", "judge_calls", "downloads")
TOTALS += ("seconds_here", "seconds_gpu", "seconds_judge")


@dataclass
class Stage:
    """One rule's work over all of its jobs."""

    rule: str
    path: str  # the benchmarked path whose rate it runs at
    flops: float = 0.0
    forward_tokens: float = 0.0
    generated_tokens: float = 0.0
    judge_calls: int = 0
    downloads: int = 0
    jobs: int = 0
    notes: list[str] = field(default_factory=list)


def _prompt_tokens(text: str) -> float:
    return max(1.0, len(text) / CHARS_PER_TOKEN)


def features_per_layer(config: dict, layer: int, default: int | None) -> int:
    spec = config["layers"][str(layer)].get("features", config.get("features"))
    if isinstance(spec, list):
        return len(spec)
    if isinstance(spec, dict) and "random" in spec:
        return int(spec["random"])
    if Path(spec["file"]).is_file():
        return len(read_feature_file(spec["file"], layer))
    if default is None:
        raise ConfigError(
            f"features.file: {spec['file']} is not here; pass --features-per-layer N to "
            "estimate without it (make paper-data fetches the paper's lists)"
        )
    return default


def workload(config: dict, features: dict[int, int]) -> dict[str, Stage]:
    """Each stage's work for `features` (layer -> feature count), before knowing which
    rules the DAG runs."""
    model = model_shapes(config["model"]["source"])
    stages: dict[str, Stage] = {}

    def stage(rule, path) -> Stage:
        return stages.setdefault(rule, Stage(rule, path))

    layers = sorted(features)
    ctx = config.get("corpus", {}).get("context_size", 128)
    metrics = config["sae_metrics"]
    residual_tokens, heldout_tokens, residual_depth, sae_width = 0, 0, 0, {}
    for layer in layers:
        own = layer_settings(config, layer)["sae"]
        train = own.get("train", {})
        sae_width[layer] = _sae_width(own, layer)
        if own.get("source") == "train":
            tokens = train["training_tokens"]
            s = stage("train_sae", "training")
            s.flops += tokens * costs.sae_train(model.d, sae_width[layer])
            s.forward_tokens += tokens
            residual_tokens = max(residual_tokens, train["activation_tokens"])
            heldout_tokens, residual_depth = metrics["max_tokens"], max(residual_depth, layer + 1)
            m = stage("sae_metrics", "mining")
            m.forward_tokens += 2 * metrics["ce_tokens"]  # clean and with the SAE spliced in
            m.flops += 2 * metrics["ce_tokens"] * model.token(model.layers, ctx / 2)
            m.flops += metrics["max_tokens"] * costs.sae_splice(model.d, sae_width[layer])
        if config["activations"]["source"] == "mine":
            mined = config["activations"]["mine"].get("max_tokens") or 1_000_000
            residual_tokens, residual_depth = (
                max(residual_tokens, mined),
                max(residual_depth, layer + 1),
            )
    if residual_tokens:
        r = stage("residuals", "mining")
        r.forward_tokens = residual_tokens + heldout_tokens
        r.flops = r.forward_tokens * model.blocks(residual_depth, ctx / 2)

    prompts = [config["output_score"]["prompt"] or OUTPUT_SCORE_PROMPT]
    extra = config["output_score"]["robustness_prompts"]
    prompts += list(PREFIXES) if extra == "prefixes" else list(extra)
    generation = config["generation"]
    prefixes = resolve_prefixes(generation["prefixes"], generation.get("n_prefixes"))
    prefix_len = sum(_prompt_tokens(p) for p in prefixes) / len(prefixes)
    factors = generation["factors"]
    new = generation["max_new_tokens"]
    evaluator = model
    if config["gen_metrics"].get("evaluator"):
        evaluator = model_shapes(config["gen_metrics"]["evaluator"])
    for layer in layers:
        n = features[layer]
        for name in ("logit_lens", "negative_logits"):
            s = stage(name, "output_score")
            s.flops += n * model.head()
        s = stage("output_scores", "output_score")
        for prompt in prompts:
            length = _prompt_tokens(prompt)
            s.forward_tokens += n + length
            s.flops += n * model.steered_feature(layer, length)
            s.flops += length * model.blocks(model.layers, length / 2)
        _activations(stage("activations", "mining"), config, model, layer, n, sae_width[layer])
        g = min(n, generation.get("max_features") or n)
        # factor 0 is unsteered: one text per prefix, shared by the features
        texts = len(prefixes) * (int(0.0 in factors) + g * sum(1 for f in factors if f != 0))
        s = stage("generations", "generation")
        s.generated_tokens += texts * new
        s.flops += texts * new * model.sampled_token(prefix_len, new)
        s = stage("gen_metrics", "perplexity")
        s.forward_tokens += texts * (prefix_len + new)
        s.flops += texts * evaluator.scored_text(prefix_len + new)
    _concepts(stages, config, model, features, sae_width)
    return stages


def _sae_width(sae: dict, layer: int) -> int:
    """d_sae from the layer's settings, or a local SAE's cfg.json."""
    if sae.get("source") == "train":
        return sae["train"]["d_sae"]
    if sae.get("d_sae"):
        return sae["d_sae"]
    cfg = Path(sae.get("path", "")) / "cfg.json"
    if cfg.is_file():
        return json.loads(cfg.read_text())["d_sae"]
    raise ConfigError(f"layers.{layer}.sae.d_sae: needed to estimate (the SAE is not here)")


def _activations(s: Stage, config, model: Shapes, layer: int, n: int, d_sae: int) -> None:
    """Mining encodes the cached residuals with the whole SAE (TopK needs every latent);
    the other sources download each feature's examples."""
    if config["activations"]["source"] != "mine":
        s.path = "download"
        s.downloads += n
        return
    tokens = config["activations"]["mine"].get("max_tokens")
    if tokens is None:
        tokens = 1_000_000
        s.notes.append("mining reads the whole corpus: counted at 1M tokens a layer")
    s.forward_tokens += tokens
    s.flops += tokens * costs.sae_encode(model.d, d_sae)


def _concepts(stages, config, model: Shapes, features: dict[int, int], sae_width) -> None:
    concepts = config.get("concepts") or {}
    if not concepts.get("layers") or concepts.get("source") == "released":
        return
    n_instr, n_select = concepts["n_instructions"], concepts["n_select"]
    per_concept = 2 * len(concepts["factors"]) * n_instr + (n_instr - n_select)
    new = concepts["max_new_tokens"]
    prompt = 40.0  # an instruction, in tokens (the chat protocol adds its template)
    judge = concepts.get("judge", {}).get("kind", "proxy")
    mine = config["activations"]["mine"]
    window = 64  # a downloaded example, in tokens
    if config["activations"]["source"] == "mine":
        window = mine.get("context_before", 31) + mine.get("context_after", 8) + 1
    for layer in concepts["layers"]:
        n = min(features.get(layer, 0), concepts.get("max_concepts") or features.get(layer, 0))
        answers = n * per_concept
        s = stages.setdefault("concept_generations", Stage("concept_generations", "concepts"))
        s.generated_tokens += answers * new
        s.flops += answers * new * model.sampled_token(prompt, new)
        d = stages.setdefault("concepts", Stage("concepts", "mining"))
        examples = n * concepts["diffmean_examples"]  # each concept's mean, once
        d.forward_tokens += examples * window
        d.flops += examples * window * model.blocks(layer + 1, window / 2)
        r = stages.setdefault("concept_ratings", Stage("concept_ratings", "perplexity"))
        if judge == "chat":
            r.path = "judge"
            r.judge_calls += 3 * answers  # concept, instruction, fluency
        else:
            r.forward_tokens += answers * (prompt + new)
            r.flops += answers * model.scored_text(prompt + new)


def _scale_to(stages: dict[str, Stage], jobs: dict[str, int], whole: dict[str, int]) -> None:
    """Each rule's work times the share of the whole run's jobs that the targets need."""
    for rule, s in stages.items():
        share = jobs.get(rule, 0) / whole[rule] if whole.get(rule) else 0.0
        s.flops *= share
        s.forward_tokens *= share
        s.generated_tokens *= share
        s.judge_calls = round(s.judge_calls * share)
        s.downloads = round(s.downloads * share)


def read_rates(path: str | Path | None) -> dict:
    if path is None:
        return json.loads(resources.files("saesteer").joinpath("rates.json").read_text())
    return json.loads(Path(path).read_text())


def estimate(
    configfile: Path,
    features_default: int | None = None,
    gpu: str = "A40",
    rates_file=None,
    targets: list[str] = (),
) -> dict:
    """The estimate as a dict: stages (rows), totals, and the machines' projected hours.
    With `targets`, of the jobs that make them only: a rule's work scales with the share of
    its jobs they need."""
    if gpu not in GPUS:
        raise ConfigError(f"--gpu: {gpu!r} (known: {sorted(GPUS)})")
    config = resolve_config(read_config(configfile))
    layers = sorted(int(k) for k in config["layers"])
    features = {layer: features_per_layer(config, layer, features_default) for layer in layers}
    stages = workload(config, features)
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        overrides = stand_ins(config, features, Path(tmp))
        try:
            jobs = dag_jobs(configfile, overrides, targets)
            if targets:
                _scale_to(stages, jobs, dag_jobs(configfile, overrides))
        except MissingInput as e:
            if targets:
                raise ConfigError(f"targets {list(targets)}: no dry run ({e})") from None
            jobs = {}
            notes.append(f"jobs and their start-up not counted (no dry run): {e}")
    rates = read_rates(rates_file)
    fp32 = config["model"].get("dtype", "float32") == "float32"
    peak = GPUS[gpu][0 if fp32 else 1]
    # what a job costs beyond its compute (loading the model, reading and writing files),
    # measured per rule; a rule the rates lack gets the median of those alike
    startup = rates["startup_s"]
    alike = {
        kind: statistics.median(
            [v for r, v in startup.items() if (r in stages and stages[r].flops > 0) == kind]
            or [0.0]
        )
        for kind in (True, False)
    }
    rows = []
    rules = (set(stages) | set(jobs)) - {"all"}
    # Ties (rules without FLOPs) by name, so the table is the same on every run.
    for rule in sorted(rules, key=lambda r: (-stages.get(r, Stage(r, "")).flops, r)):
        s = stages.get(rule, Stage(rule, "none"))
        if jobs and rule not in jobs:
            continue
        s.jobs = jobs.get(rule, 0) if jobs else None
        rate = rates["paths"].get(s.path)
        here = gpu_s = judge_s = 0.0
        if rate:
            here = s.flops / (rate["gflops"] * 1e9)
            gpu_s = s.flops / (peak * rate["share"])
        if s.path == "judge":  # wall time at the judge's rate limit, on no device
            rpm = config["concepts"]["judge"]["chat"]["requests_per_minute"]
            judge_s = 60 * s.judge_calls / rpm
        here += (s.jobs or 0) * startup.get(rule, alike[s.flops > 0]) + judge_s
        row = {**s.__dict__, "seconds_here": here, "seconds_gpu": gpu_s, "seconds_judge": judge_s}
        rows.append(row)
    return {
        "config": str(configfile),
        "targets": list(targets),
        "run": config["run"],
        "layers": len(layers),
        "features": sum(features.values()),
        "gpu": gpu,
        "dtype": config["model"].get("dtype", "float32"),
        "rates_machine": rates["machine"],
        "stages": rows,
        "notes": notes,
        "total": {
            key: sum(r[key] or 0 for r in rows) if jobs or key != "jobs" else None for key in TOTALS
        },
    }


def _human(x: float) -> str:
    if x < 1000:
        return f"{x:.0f}"
    exponent = min(int(math.log10(x) // 3), 5)
    return f"{x / 10 ** (3 * exponent):.1f}{' kMGTP'[exponent]}"


def _hours(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def render(result: dict) -> str:
    """The estimate as Markdown: one row per rule and the totals."""
    lines = [
        f"# {result['config']}: run {result['run']!r}, {result['layers']} layers, "
        f"{result['features']} features, {result['dtype']}"
        + (f"; the jobs that make {', '.join(result['targets'])}" if result["targets"] else ""),
        "",
        f"| rule | jobs | forward tokens | tokens to generate | FLOPs | judge calls | "
        f"downloads | here | {result['gpu']} GPU | judge |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in [*result["stages"], {"rule": "**total**", **result["total"]}]:
        lines.append(
            f"| {r['rule']} | {'?' if r['jobs'] is None else r['jobs']} | "
            f"{_human(r['forward_tokens'])} | "
            f"{_human(r['generated_tokens'])} | {_human(r['flops'])} | {r['judge_calls']} | "
            f"{r['downloads']} | {_hours(r['seconds_here'])} | {_hours(r['seconds_gpu'])} | "
            f"{_hours(r['seconds_judge'])} |"
        )
    lines += [
        "",
        f"here: wall time on {result['rates_machine']}, one job at a time, start-up and "
        f"judge included; {result['gpu']} GPU: device time at its {result['dtype']} peak "
        "times the share of peak the benchmarks reached, without start-up; judge: wall "
        "time at its requests_per_minute.",
    ]
    notes = sorted({n for r in result["stages"] for n in r["notes"]}) + result["notes"]
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)
