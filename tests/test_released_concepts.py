"""The paper's released concept-steering data (ratings, instructions, answers) as a table."""

import json
import logging

import polars as pl
import pytest

from saesteer.cli import main
from saesteer.config import ConfigError
from saesteer.released import ReleasedDataError
from saesteer.released_concepts import RELEASED_CONCEPTS_SCHEMA, import_released_concepts

MODEL = "gm"
GEN = f"generated_texts/{MODEL}"
BEST = "steering_factors/p_best_steering_factors.json"
INSTRUCTIONS = "axbench_instructions/p_instructions_cache.json"
SCORES = "axbench_llm_scores/p_llm_{}_score_cache.json"


def instructions_of(key: str) -> list[str]:
    return [f"Say {key} thing {j}." for j in range(10)]


def texts_of(key: str, factor: str, unprefixed=()) -> list[str]:
    """Instruction j followed by its answer; the texts in `unprefixed` lack the instruction."""
    return [
        f"garbled {key} {j}" if j in unprefixed else f"Say {key} thing {j}. ans {factor} {j}"
        for j in range(10)
    ]


def entry(scores, factor, mean=None):
    found = [s for s in scores if s is not None]
    return {
        "scores": scores,
        "mean_score": mean if mean is not None else sum(found) / len(found) if found else None,
        "best_steering_factor": factor,
        "responses": [f"judge says {s}" for s in scores],
    }


def release() -> dict:
    """Relative path -> JSON object of a small release: 2 layers, 5 concepts.

    3_7   factor 0.4, every text starts with its instruction, rated on every aspect;
    3_12  factor 2.0, test texts 6 and 8 do not start with their instruction; instruction
          rating 0, so its score is 0;
    10_2  factor 10.0, whose generation file is absent; null concept entry;
    10_5  factor 0.4, absent from the 0.4 generation file; no concept entry; all its
          instruction ratings null;
    10_9  factor 0.4, no instructions and no ratings: its texts are kept whole.
    """
    best = {"10_5": 0.4, "3_12": 2.0, "3_7": 0.4, "10_2": 10.0, "10_9": 0.4}
    return {
        BEST: best,
        # another model's best factors, as in the release: not read
        "steering_factors/q_best_steering_factors.json": {"3_7": "not read"},
        INSTRUCTIONS: {k: instructions_of(k) for k in ["3_7", "3_12", "10_2", "10_5"]},
        f"{GEN}/p_generations_cache_0_4.json": {
            "3_7": texts_of("3_7", "0_4"),
            "10_9": texts_of("10_9", "0_4"),
            "3_12": texts_of("3_12", "0_4"),
        },
        f"{GEN}/p_generations_cache_2_0.json": {"3_12": texts_of("3_12", "2_0", (6, 8))},
        # not a generation file: ignored
        f"{GEN}/notes.json": {},
        SCORES.format("concept"): {
            "3_7": entry([2, 1, None, 0, 2], 0.4),
            "3_12": entry([1, 1, 1, 1, 1], 2.0),
            "10_2": None,
            "4_1": entry([2, 2, 2, 2, 2], 1.0),  # not a concept of the best-factor file
        },
        SCORES.format("instruct"): {
            "3_7": entry([2, 2, 2, 2, 2], 0.4),
            "3_12": entry([0, 0, 0, 0, 0], 2.0),
            "10_2": entry([1, 2, 1, 2, 1], 10.0),
            "10_5": entry([None] * 5, 0.4),
        },
        SCORES.format("fluency"): {
            "3_7": entry([1, 1, 2, 2, 2], 0.4),
            "3_12": entry([2, 2, 2, 2, 2], 2.0),
            "10_2": entry([2, 2, 2, 2, 2], 10.0),
            "10_5": entry([0, 1, 2, 1, 0], 0.4),
        },
    }


def write(tmp_path, files: dict):
    """Write `files` under tmp_path/data: a str is written as is, None not at all."""
    data = tmp_path / "data"
    (data / GEN).mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        if content is None:
            continue
        path = data / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return data


def import_(data, **kwargs):
    return import_released_concepts(data, model_dir=MODEL, **kwargs)


def test_every_column_of_a_small_release(tmp_path):
    frame = import_(write(tmp_path, release()))
    assert frame.schema == pl.Schema(RELEASED_CONCEPTS_SCHEMA)
    rows = {(r["layer"], r["feature"]): r for r in frame.iter_rows(named=True)}
    # sorted numerically by layer, then feature
    assert list(rows) == [(3, 7), (3, 12), (10, 2), (10, 5), (10, 9)]
    assert [r["best_factor"] for r in rows.values()] == [0.4, 2.0, 10.0, 0.4, 0.4]
    assert [r["n_test"] for r in rows.values()] == [5, 5, 5, 5, None]

    r = rows[3, 7]
    assert r["test_concept_ratings"] == [2.0, 1.0, None, 0.0, 2.0]
    assert r["test_instruction_ratings"] == [2.0] * 5
    assert r["test_fluency_ratings"] == [1.0, 1.0, 2.0, 2.0, 2.0]
    assert r["concept_rating"] == 5 / 4  # the null rating left out
    assert r["instruction_rating"] == 2.0
    assert r["fluency_rating"] == 8 / 5
    assert r["score"] == pytest.approx(3 / (1 / 1.25 + 1 / 2 + 1 / 1.6))
    assert r["test_instructions"] == [f"Say 3_7 thing {j}." for j in range(5, 10)]
    assert r["test_answers"] == [f" ans 0_4 {j}" for j in range(5, 10)]
    assert r["test_texts"] == [f"Say 3_7 thing {j}. ans 0_4 {j}" for j in range(5, 10)]
    assert r["generation_file"] == f"{GEN}/p_generations_cache_0_4.json"

    r = rows[3, 12]
    assert (r["concept_rating"], r["instruction_rating"], r["fluency_rating"]) == (1, 0, 2)
    assert r["score"] == 0.0  # one mean is 0
    assert r["test_instruction_ratings"] == [0.0] * 5
    # the answers at its best factor 2.0, not at 0.4; texts 6 and 8 kept whole
    assert r["test_answers"] == [
        " ans 2_0 5",
        "garbled 3_12 6",
        " ans 2_0 7",
        "garbled 3_12 8",
        " ans 2_0 9",
    ]
    assert r["test_texts"][1] == "garbled 3_12 6"
    assert r["generation_file"] == f"{GEN}/p_generations_cache_2_0.json"

    r = rows[10, 2]
    assert r["test_concept_ratings"] is None and r["concept_rating"] is None  # null entry
    assert r["test_instruction_ratings"] == [1.0, 2.0, 1.0, 2.0, 1.0]
    assert r["instruction_rating"] == pytest.approx(7 / 5)
    assert r["fluency_rating"] == 2.0
    assert r["score"] is None
    assert r["test_instructions"] == [f"Say 10_2 thing {j}." for j in range(5, 10)]
    assert r["test_answers"] is None and r["test_texts"] is None  # no file of factor 10
    assert r["generation_file"] == f"{GEN}/p_generations_cache_10_0.json"

    r = rows[10, 5]
    assert r["test_concept_ratings"] is None  # no entry
    assert r["test_instruction_ratings"] == [None] * 5
    assert r["instruction_rating"] is None  # every rating null
    assert r["test_fluency_ratings"] == [0.0, 1.0, 2.0, 1.0, 0.0]
    assert r["fluency_rating"] == pytest.approx(4 / 5)
    assert r["score"] is None
    assert r["test_instructions"] == [f"Say 10_5 thing {j}." for j in range(5, 10)]
    assert r["test_answers"] is None  # not in the 0.4 file

    r = rows[10, 9]
    for column in ["concept_rating", "instruction_rating", "fluency_rating", "score"]:
        assert r[column] is None
    for column in ["test_concept_ratings", "test_instruction_ratings", "test_fluency_ratings"]:
        assert r[column] is None
    assert r["test_instructions"] is None
    # no instructions: the whole texts are the answers
    assert r["test_answers"] == [f"Say 10_9 thing {j}. ans 0_4 {j}" for j in range(5, 10)]


def test_score_is_concept_eval_harmonic_of_the_means(tmp_path):
    from saesteer.concept_eval import harmonic

    frame = import_(write(tmp_path, release())).drop_nulls("score")
    expected = frame.select(
        harmonic(pl.col("concept_rating"), pl.col("instruction_rating"), pl.col("fluency_rating"))
    ).to_series()
    assert frame["score"].to_list() == pytest.approx(expected.to_list())
    assert frame.height == 2


def test_absent_concept_cache_and_instructions(tmp_path):
    files = release()
    files[SCORES.format("concept")] = None
    files[INSTRUCTIONS] = None
    frame = import_(write(tmp_path, files))
    assert frame["concept_rating"].is_null().all()
    assert frame["test_concept_ratings"].is_null().all()
    assert frame["score"].is_null().all()
    assert frame["test_instructions"].is_null().all()
    assert frame["n_test"].to_list() == [5, 5, 5, 5, None]
    assert frame["instruction_rating"].to_list()[:2] == [2.0, 0.0]
    answers = frame.filter(layer=3, feature=7)["test_answers"].to_list()[0]
    assert answers == [f"Say 3_7 thing {j}. ans 0_4 {j}" for j in range(5, 10)]


def test_n_select_moves_the_split(tmp_path):
    files = release()
    for aspect in ["concept", "instruct", "fluency"]:
        for value in files[SCORES.format(aspect)].values():
            if value is not None:
                value["scores"] = [*value["scores"], 2]
    frame = import_(write(tmp_path, files), n_select=4)
    r = frame.row(0, named=True)
    assert r["n_test"] == 6
    assert r["test_concept_ratings"] == [2.0, 1.0, None, 0.0, 2.0, 2.0]
    assert r["concept_rating"] == 7 / 5
    assert r["test_instructions"] == [f"Say 3_7 thing {j}." for j in range(4, 10)]


def test_disagreeing_cache_factor_and_mean_are_logged(tmp_path, caplog):
    files = release()
    files[SCORES.format("fluency")]["3_12"]["best_steering_factor"] = 4.0
    files[SCORES.format("instruct")]["3_7"]["mean_score"] = 1.5
    with caplog.at_level(logging.WARNING, logger="saesteer"):
        frame = import_(write(tmp_path, files))
    text = caplog.text
    assert "p_llm_fluency_score_cache.json: best_steering_factor differs" in text
    assert "3_12: 4.0 vs 2.0" in text
    assert "p_llm_instruct_score_cache.json: mean_score differs" in text
    assert "3_7: 1.5 vs 2.0" in text
    # the best-factor file and the recomputed mean win
    assert frame.filter(layer=3, feature=12)["best_factor"].item() == 2.0
    assert frame.filter(layer=3, feature=7)["instruction_rating"].item() == 2.0


def test_missing_directories(tmp_path):
    with pytest.raises(ReleasedDataError, match=r"DATA_DIR .*nowhere: not a directory"):
        import_(tmp_path / "nowhere")
    data = write(tmp_path, release())
    with pytest.raises(ReleasedDataError, match=r"generated_texts/other: model dir not found"):
        import_released_concepts(data, model_dir="other")
    (data / "generated_texts" / "empty").mkdir()
    with pytest.raises(ReleasedDataError, match=r"generated_texts/empty: no generation files"):
        import_released_concepts(data, model_dir="empty")


def test_several_prefixes_in_the_model_dir(tmp_path):
    files = release()
    files[f"{GEN}/q_generations_cache_0_4.json"] = {}
    with pytest.raises(
        ReleasedDataError, match=r"generated_texts/gm: .*several prefixes \['p', 'q'\]"
    ):
        import_(write(tmp_path, files))


def test_missing_best_factor_file(tmp_path):
    files = release()
    files[BEST] = None
    with pytest.raises(ReleasedDataError, match=r"p_best_steering_factors.json: file not found"):
        import_(write(tmp_path, files))


def mutate(path, key, value):
    def change(files):
        files[path][key] = value

    return change


def set_scores(aspect, key, scores):
    def change(files):
        files[SCORES.format(aspect)][key]["scores"] = scores

    return change


def replace(path, content):
    def change(files):
        files[path] = content

    return change


@pytest.mark.parametrize(
    ("change", "file", "message"),
    [
        (replace(BEST, "{not json"), BEST, "not valid JSON"),
        (replace(BEST, '{"3_7": NaN}'), BEST, "not valid JSON"),
        (replace(BEST, '{"3_7": 1e999}'), BEST, "not valid JSON"),
        (replace(BEST, "[0.4]"), BEST, "expected"),
        (mutate(BEST, "3-7", 0.4), BEST, "key '3-7' is not <layer>_<index>"),
        (mutate(BEST, "3_7", 0), BEST, "concept 3_7: factor 0 is not a finite number > 0"),
        (mutate(BEST, "3_7", -2.0), BEST, "concept 3_7: factor -2.0 is not"),
        (mutate(BEST, "3_7", "0.4"), BEST, "concept 3_7: factor '0.4' is not"),
        (mutate(BEST, "3_7", True), BEST, "concept 3_7: factor True is not"),
        (mutate(BEST, "03_7", 0.4), BEST, "key '03_7' repeats concept 3_7"),
        (mutate(INSTRUCTIONS, "x_1", []), INSTRUCTIONS, "key 'x_1' is not <layer>_<index>"),
        (mutate(INSTRUCTIONS, "3_7", ["a"] * 9), INSTRUCTIONS, "3_7: expected a list of 10"),
        (replace(INSTRUCTIONS, "{"), INSTRUCTIONS, "not valid JSON"),
        (
            mutate(f"{GEN}/p_generations_cache_0_4.json", "3_7", [1] * 10),
            f"{GEN}/p_generations_cache_0_4.json",
            "3_7: expected a list of 10 texts",
        ),
        (
            mutate(f"{GEN}/p_generations_cache_2_0.json", "3_12_1", []),
            f"{GEN}/p_generations_cache_2_0.json",
            "key '3_12_1' is not <layer>_<index>",
        ),
        (replace(SCORES.format("concept"), "nope"), SCORES.format("concept"), "not valid JSON"),
        (
            mutate(SCORES.format("fluency"), "4 1", None),
            SCORES.format("fluency"),
            "key '4 1' is not",
        ),
        (
            set_scores("concept", "3_7", [2, 1, 3, 0, 2]),
            SCORES.format("concept"),
            r"concept 3_7: score 2 3 is not null or a number in \[0, 2\]",
        ),
        (
            set_scores("instruct", "3_12", [0, -1, 0, 0, 0]),
            SCORES.format("instruct"),
            "concept 3_12: score 1 -1 is not",
        ),
        (
            set_scores("fluency", "10_5", [0, 1, "2", 1, 0]),
            SCORES.format("fluency"),
            "concept 10_5: score 2 '2' is not",
        ),
        (
            set_scores("fluency", "10_5", [0, 1, True, 1, 0]),
            SCORES.format("fluency"),
            "concept 10_5: score 2 True is not",
        ),
        (
            set_scores("concept", "3_7", [2, 1, 0, 2]),
            SCORES.format("concept"),
            "concept 3_7: 4 scores, expected 5",
        ),
        (
            set_scores("instruct", "10_2", [1] * 10),
            SCORES.format("instruct"),
            "concept 10_2: 10 scores, expected 5",
        ),
        (
            mutate(SCORES.format("fluency"), "3_7", [2, 2, 2, 2, 2]),
            SCORES.format("fluency"),
            "concept 3_7: expected an object with a list 'scores'",
        ),
        (
            mutate(SCORES.format("fluency"), "3_7", {"mean_score": 2.0}),
            SCORES.format("fluency"),
            "concept 3_7: expected an object",
        ),
        (
            mutate(SCORES.format("fluency"), "3_7", entry([2] * 5, "0.4")),
            SCORES.format("fluency"),
            "concept 3_7: best_steering_factor '0.4' is not a finite number",
        ),
    ],
)
def test_malformed_files_are_named(tmp_path, change, file, message):
    files = release()
    change(files)
    data = write(tmp_path, files)
    with pytest.raises(ReleasedDataError, match=message) as error:
        import_(data)
    assert str(error.value).startswith(f"{data / file}: ")


def test_score_lists_must_match_the_test_split(tmp_path):
    data = write(tmp_path, release())
    with pytest.raises(ReleasedDataError, match="concept_score_cache.json: .* expected 6"):
        import_(data, n_select=4)


@pytest.mark.parametrize("n_select", [-1, 10, 2.5])
def test_n_select_out_of_range(tmp_path, n_select):
    with pytest.raises(ConfigError, match="n_select"):
        import_(write(tmp_path, release()), n_select=n_select)


def test_cli_writes_the_table(tmp_path, caplog):
    data = write(tmp_path, release())
    out = tmp_path / "out" / "released.parquet"
    with caplog.at_level(logging.INFO, logger="saesteer"):
        rc = main(["import-released-concepts", str(data), str(out), "--model-dir", MODEL])
    assert rc == 0
    written = pl.read_parquet(out)
    assert written.schema == pl.Schema(RELEASED_CONCEPTS_SCHEMA)
    assert written.equals(import_(data))
    summary = [r.getMessage() for r in caplog.records if r.name == "saesteer"][-1]
    assert "5 released concepts" in summary
    assert "layer 3: 2 concepts, 2 with answers, 2 with all three means" in summary
    assert "mean score 0.779" in summary  # (1.558 + 0) / 2
    assert "layer 10: 3 concepts, 1 with answers, 0 with all three means, mean score -" in summary


def test_cli_errors_name_the_file(tmp_path, caplog):
    files = release()
    files[BEST] = None
    data = write(tmp_path, files)
    out = tmp_path / "released.parquet"
    with caplog.at_level(logging.ERROR, logger="saesteer"):
        rc = main(["import-released-concepts", str(data), str(out), "--model-dir", MODEL])
    assert rc == 2
    assert "p_best_steering_factors.json: file not found" in caplog.text
    assert not out.exists()
    rc = main(
        ["import-released-concepts", str(data), str(out), "--model-dir", MODEL, "--n-select", "12"]
    )
    assert rc == 2
