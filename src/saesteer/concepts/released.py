"""The concept-steering data released with "SAEs Are Good for Steering – If You Select the
Right Features", read into one table of concepts.

Under the release's `data/` folder (DATA_DIR), for one model dir (e.g. `gemma_9b_it`) and the
file prefix its generation files carry (e.g. `gemma2_9b_it_131`):

- `generated_texts/<model_dir>/<prefix>_generations_cache_<factor>.json`, factor written
  `0_4`, `10_0`: `{"<layer>_<index>": [text, ...]}`, one text per instruction, each the
  instruction followed by the answer;
- `axbench_instructions/<prefix>_instructions_cache.json`: `{"<layer>_<index>": [instruction,
  ...]}` (optional);
- `axbench_llm_scores/<prefix>_llm_{concept,instruct,fluency}_score_cache.json`:
  `{"<layer>_<index>": {"scores": [...], "mean_score": x, "best_steering_factor": f, ...}}`,
  the judge's ratings (0 to 2) of the answers to the test instructions (those after the
  first `n_select`, which chose the factor) at the concept's best factor (each optional);
- `steering_factors/<prefix>_best_steering_factors.json`: `{"<layer>_<index>": factor}`,
  which defines the concepts.

Files other than the generation files of the model dir and the best-factor file may be
absent; the columns they feed are then null.

The files are read by saesteer.released, the one reader of the release (its keys, its
factor rule, its file names); this module builds the concept table on what it reads.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import polars as pl

from saesteer.errors import ConfigError, ReleasedDataError
from saesteer.io import is_finite_number
from saesteer.released import (
    Feature,
    best_factors_file,
    check_factor,
    generation_file,
    generation_files,
    key_name,
    read_best_factors,
    read_keyed,
    read_texts,
)

log = logging.getLogger(__name__)

N_INSTRUCTIONS = 10  # AxBench instructions per concept: the first n_select choose the factor
MAX_RATING = 2.0

RELEASED_CONCEPTS_SCHEMA = {
    "layer": pl.Int32,
    "feature": pl.Int64,
    "best_factor": pl.Float64,  # from the best-factor file
    "n_test": pl.Int32,  # test answers rated (length of the score lists); null: no ratings
    "concept_rating": pl.Float64,  # mean of the non-null test ratings
    "instruction_rating": pl.Float64,
    "fluency_rating": pl.Float64,
    "score": pl.Float64,  # harmonic mean of the three means; 0 if any is 0
    "test_concept_ratings": pl.List(pl.Float64),  # per test answer, nulls kept
    "test_instruction_ratings": pl.List(pl.Float64),
    "test_fluency_ratings": pl.List(pl.Float64),
    "test_instructions": pl.List(pl.Utf8),
    "test_answers": pl.List(pl.Utf8),  # at the best factor, the instruction stripped
    "test_texts": pl.List(pl.Utf8),  # the released texts themselves: what the judge rated
    "generation_file": pl.Utf8,  # of the best factor, relative to DATA_DIR, present or not
}

# aspect -> (file name part, mean column, per-answer column)
ASPECTS = {
    "concept": ("concept", "concept_rating", "test_concept_ratings"),
    "instruction": ("instruct", "instruction_rating", "test_instruction_ratings"),
    "fluency": ("fluency", "fluency_rating", "test_fluency_ratings"),
}

Concept = Feature  # (layer, feature)


def _rating_mean(ratings: list[float | None]) -> float | None:
    found = [r for r in ratings if r is not None]
    return sum(found) / len(found) if found else None


def _read_ratings(
    path: Path, n_test: int, best: dict[Concept, float]
) -> dict[Concept, list[float | None] | None]:
    """{concept: test ratings, or None for a null entry} of one judge cache."""
    out: dict[Concept, list[float | None] | None] = {}
    mean_mismatches, factor_mismatches = [], []
    for concept, entry in read_keyed(path).items():
        where = f"{path}: concept {key_name(concept)}"
        if entry is None:
            out[concept] = None
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("scores"), list):
            raise ReleasedDataError(f"{where}: expected an object with a list 'scores'")
        ratings = entry["scores"]
        if len(ratings) != n_test:
            raise ReleasedDataError(
                f"{where}: {len(ratings)} scores, expected {n_test} "
                f"({N_INSTRUCTIONS} instructions less the selection ones)"
            )
        for i, rating in enumerate(ratings):
            if rating is not None and not (is_finite_number(rating) and 0 <= rating <= MAX_RATING):
                raise ReleasedDataError(
                    f"{where}: score {i} {rating!r} is not null or a number in [0, {MAX_RATING:g}]"
                )
        ratings = [None if r is None else float(r) for r in ratings]
        value = entry.get("mean_score")
        if value is not None and not is_finite_number(value):
            raise ReleasedDataError(f"{where}: mean_score {value!r} is not a finite number")
        if entry.get("best_steering_factor") is not None:
            check_factor(entry["best_steering_factor"], where, "best_steering_factor")
        mean, released_mean = _rating_mean(ratings), entry.get("mean_score")
        if (mean is None) != (released_mean is None) or (
            mean is not None and not math.isclose(mean, released_mean, abs_tol=1e-9)
        ):
            mean_mismatches.append(f"{key_name(concept)}: {released_mean} vs {mean}")
        factor = entry.get("best_steering_factor")
        if concept in best and factor is not None and not math.isclose(factor, best[concept]):
            factor_mismatches.append(f"{key_name(concept)}: {factor} vs {best[concept]}")
        out[concept] = ratings
    if mean_mismatches:
        log.warning(
            "%s: mean_score differs from the mean of the non-null scores for %d concepts "
            "(the recomputed mean is used), e.g. %s",
            path,
            len(mean_mismatches),
            "; ".join(mean_mismatches[:3]),
        )
    if factor_mismatches:
        log.warning(
            "%s: best_steering_factor differs from the best-factor file for %d concepts "
            "(the best-factor file wins), e.g. %s",
            path,
            len(factor_mismatches),
            "; ".join(factor_mismatches[:3]),
        )
    extra = len(out.keys() - best.keys())
    log.info(
        "%s: %d entries (%d null, %d not in the best-factor file)",
        path,
        len(out),
        sum(v is None for v in out.values()),
        extra,
    )
    return out


def _harmonic(a: float | None, b: float | None, c: float | None) -> float | None:
    """As saesteer.concepts.evaluation.harmonic (0 when any is 0), null when any is null."""
    if a is None or b is None or c is None:
        return None
    if a <= 0 or b <= 0 or c <= 0:
        return 0.0
    return 3.0 / (1.0 / a + 1.0 / b + 1.0 / c)


def _answer(text: str, instruction: str | None) -> str:
    if instruction is not None and text.startswith(instruction):
        return text[len(instruction) :]
    return text


def import_released_concepts(
    data_dir: str | Path, model_dir: str = "gemma_9b_it", n_select: int = 5
) -> pl.DataFrame:
    """One row per concept of the release's best-factor file, with its test ratings, their
    means and score, and its test instructions and answers at its best factor
    (RELEASED_CONCEPTS_SCHEMA), sorted by layer and feature."""
    if isinstance(n_select, bool) or not isinstance(n_select, int):
        raise ConfigError(f"n_select: {n_select!r} is not an integer")
    if not 0 <= n_select < N_INSTRUCTIONS:
        raise ConfigError(f"n_select: {n_select} is not in 0..{N_INSTRUCTIONS - 1}")
    n_test = N_INSTRUCTIONS - n_select
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ReleasedDataError(f"DATA_DIR {data_dir}: not a directory")
    model_path = data_dir / "generated_texts" / model_dir
    prefix, gen_files = generation_files(model_path)
    log.info(
        "%s: prefix %s, generation files of factors %s",
        model_path,
        prefix,
        sorted(gen_files),
    )

    best_path = best_factors_file(data_dir, prefix)
    best = read_best_factors(best_path)
    log.info("%s: %d concepts", best_path, len(best))

    instructions_path = data_dir / "axbench_instructions" / f"{prefix}_instructions_cache.json"
    instructions: dict[Concept, list[str]] | None = None
    if instructions_path.exists():
        instructions = read_texts(instructions_path, N_INSTRUCTIONS)
        log.info("%s: %d concepts", instructions_path, len(instructions))
    else:
        log.warning("%s: absent; texts are kept whole, instructions are null", instructions_path)

    ratings: dict[str, dict[Concept, list[float | None] | None]] = {}
    for aspect, (part, _, _) in ASPECTS.items():
        path = data_dir / "axbench_llm_scores" / f"{prefix}_llm_{part}_score_cache.json"
        if path.exists():
            ratings[aspect] = _read_ratings(path, n_test, best)
        else:
            log.warning("%s: absent; %s ratings are null", path, aspect)
            ratings[aspect] = {}

    texts: dict[float, dict[Concept, list[str]] | None] = {}
    for factor in sorted(set(best.values())):
        path = gen_files.get(factor)
        if path is None:
            n = sum(f == factor for f in best.values())
            log.warning(
                "%s: no generation file of factor %g; the answers of %d concepts are null",
                model_path,
                factor,
                n,
            )
            texts[factor] = None
        else:
            texts[factor] = read_texts(path, N_INSTRUCTIONS)
            log.info("%s: %d concepts", path, len(texts[factor]))

    columns: dict[str, list] = {name: [] for name in RELEASED_CONCEPTS_SCHEMA}
    unprefixed = 0
    for concept in sorted(best):
        factor = best[concept]
        columns["layer"].append(concept[0])
        columns["feature"].append(concept[1])
        columns["best_factor"].append(factor)
        means = []
        for aspect, (_, mean_column, list_column) in ASPECTS.items():
            found = ratings[aspect].get(concept)
            mean = None if found is None else _rating_mean(found)
            columns[list_column].append(found)
            columns[mean_column].append(mean)
            means.append(mean)
        rated = any(ratings[aspect].get(concept) is not None for aspect in ASPECTS)
        columns["n_test"].append(n_test if rated else None)
        columns["score"].append(_harmonic(*means))

        concept_instructions = None if instructions is None else instructions.get(concept)
        test_instructions = (
            None if concept_instructions is None else concept_instructions[n_select:]
        )
        columns["test_instructions"].append(test_instructions)
        path = gen_files.get(factor)
        if path is None:
            path = generation_file(model_path, prefix, factor)
        columns["generation_file"].append(path.relative_to(data_dir).as_posix())
        factor_texts = texts[factor]
        concept_texts = None if factor_texts is None else factor_texts.get(concept)
        if concept_texts is None:
            columns["test_answers"].append(None)
            columns["test_texts"].append(None)
            continue
        answers = []
        for j in range(n_select, N_INSTRUCTIONS):
            instruction = None if concept_instructions is None else concept_instructions[j]
            if instruction is not None and not concept_texts[j].startswith(instruction):
                unprefixed += 1
            answers.append(_answer(concept_texts[j], instruction))
        columns["test_answers"].append(answers)
        columns["test_texts"].append(concept_texts[n_select:])
    if unprefixed:
        log.info("%d test texts do not start with their instruction: kept whole", unprefixed)
    return pl.DataFrame(columns, schema=RELEASED_CONCEPTS_SCHEMA)


def summary(frame: pl.DataFrame) -> str:
    """One line: per layer, concepts, those with answers and with all three means, and the
    mean score and ratings over the concepts that have them."""
    per_layer = (
        frame.group_by("layer")
        .agg(
            n=pl.len(),
            answers=pl.col("test_answers").is_not_null().sum(),
            rated=pl.all_horizontal(pl.col(m).is_not_null() for _, m, _ in ASPECTS.values()).sum(),
            score=pl.col("score").mean(),
            **{m: pl.col(m).mean() for _, m, _ in ASPECTS.values()},
        )
        .sort("layer")
    )

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    parts = [
        f"layer {r['layer']}: {r['n']} concepts, {r['answers']} with answers, "
        f"{r['rated']} with all three means, mean score {fmt(r['score'])} "
        f"(concept {fmt(r['concept_rating'])}, instruction {fmt(r['instruction_rating'])}, "
        f"fluency {fmt(r['fluency_rating'])})"
        for r in per_layer.iter_rows(named=True)
    ]
    return "; ".join(parts)
