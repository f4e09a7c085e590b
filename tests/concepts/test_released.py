"""The paper's released concept-steering data (ratings, instructions, answers) as a table."""

import logging

import polars as pl
import pytest

from saesteer.concepts.released import RELEASED_CONCEPTS_SCHEMA, import_released_concepts
from saesteer.errors import ConfigError, ReleasedDataError, SaesteerError
from tests.helpers import (
    RELEASE_BEST,
    RELEASE_GEN,
    RELEASE_INSTRUCTIONS,
    RELEASE_SCORES,
    entry,
    import_,
    release,
    write,
)


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
    assert r["generation_file"] == f"{RELEASE_GEN}/p_generations_cache_0_4.json"

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
    assert r["generation_file"] == f"{RELEASE_GEN}/p_generations_cache_2_0.json"

    r = rows[10, 2]
    assert r["test_concept_ratings"] is None and r["concept_rating"] is None  # null entry
    assert r["test_instruction_ratings"] == [1.0, 2.0, 1.0, 2.0, 1.0]
    assert r["instruction_rating"] == pytest.approx(7 / 5)
    assert r["fluency_rating"] == 2.0
    assert r["score"] is None
    assert r["test_instructions"] == [f"Say 10_2 thing {j}." for j in range(5, 10)]
    assert r["test_answers"] is None and r["test_texts"] is None  # no file of factor 10
    assert r["generation_file"] == f"{RELEASE_GEN}/p_generations_cache_10_0.json"

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
    from saesteer.concepts.evaluation import harmonic

    frame = import_(write(tmp_path, release())).drop_nulls("score")
    expected = frame.select(
        harmonic(pl.col("concept_rating"), pl.col("instruction_rating"), pl.col("fluency_rating"))
    ).to_series()
    assert frame["score"].to_list() == pytest.approx(expected.to_list())
    assert frame.height == 2


def test_absent_concept_cache_and_instructions(tmp_path):
    files = release()
    files[RELEASE_SCORES.format("concept")] = None
    files[RELEASE_INSTRUCTIONS] = None
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
        for value in files[RELEASE_SCORES.format(aspect)].values():
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
    files[RELEASE_SCORES.format("fluency")]["3_12"]["best_steering_factor"] = 4.0
    files[RELEASE_SCORES.format("instruct")]["3_7"]["mean_score"] = 1.5
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
    files[f"{RELEASE_GEN}/q_generations_cache_0_4.json"] = {}
    with pytest.raises(
        ReleasedDataError, match=r"generated_texts/gm: .*several prefixes \['p', 'q'\]"
    ):
        import_(write(tmp_path, files))


def test_missing_best_factor_file(tmp_path):
    files = release()
    files[RELEASE_BEST] = None
    with pytest.raises(ReleasedDataError, match=r"p_best_steering_factors.json: file not found"):
        import_(write(tmp_path, files))


def mutate(path, key, value):
    def change(files):
        files[path][key] = value

    return change


def set_scores(aspect, key, scores):
    def change(files):
        files[RELEASE_SCORES.format(aspect)][key]["scores"] = scores

    return change


def replace(path, content):
    def change(files):
        files[path] = content

    return change


@pytest.mark.parametrize(
    ("change", "file", "message"),
    [
        (replace(RELEASE_BEST, "{not json"), RELEASE_BEST, "not valid JSON"),
        (replace(RELEASE_BEST, '{"3_7": NaN}'), RELEASE_BEST, "not valid JSON"),
        (replace(RELEASE_BEST, '{"3_7": 1e999}'), RELEASE_BEST, "not valid JSON"),
        (replace(RELEASE_BEST, "[0.4]"), RELEASE_BEST, "expected"),
        (mutate(RELEASE_BEST, "3-7", 0.4), RELEASE_BEST, "key '3-7' is not <layer>_<index>"),
        (
            mutate(RELEASE_BEST, "3_7", -2.0),
            RELEASE_BEST,
            "feature 3_7: factor -2.0 is not a finite number >= 0",
        ),
        (mutate(RELEASE_BEST, "3_7", "0.4"), RELEASE_BEST, "feature 3_7: factor '0.4' is not"),
        (mutate(RELEASE_BEST, "3_7", True), RELEASE_BEST, "feature 3_7: factor True is not"),
        (mutate(RELEASE_BEST, "03_7", 0.4), RELEASE_BEST, "key '03_7' repeats feature 3_7"),
        (
            mutate(RELEASE_INSTRUCTIONS, "x_1", []),
            RELEASE_INSTRUCTIONS,
            "key 'x_1' is not <layer>_<index>",
        ),
        (
            mutate(RELEASE_INSTRUCTIONS, "3_7", ["a"] * 9),
            RELEASE_INSTRUCTIONS,
            "3_7: expected a list of 10",
        ),
        (replace(RELEASE_INSTRUCTIONS, "{"), RELEASE_INSTRUCTIONS, "not valid JSON"),
        (
            mutate(f"{RELEASE_GEN}/p_generations_cache_0_4.json", "3_7", [1] * 10),
            f"{RELEASE_GEN}/p_generations_cache_0_4.json",
            "3_7: expected a list of 10 texts",
        ),
        (
            mutate(f"{RELEASE_GEN}/p_generations_cache_2_0.json", "3_12_1", []),
            f"{RELEASE_GEN}/p_generations_cache_2_0.json",
            "key '3_12_1' is not <layer>_<index>",
        ),
        (
            replace(RELEASE_SCORES.format("concept"), "nope"),
            RELEASE_SCORES.format("concept"),
            "not valid JSON",
        ),
        (
            mutate(RELEASE_SCORES.format("fluency"), "4 1", None),
            RELEASE_SCORES.format("fluency"),
            "key '4 1' is not",
        ),
        (
            set_scores("concept", "3_7", [2, 1, 3, 0, 2]),
            RELEASE_SCORES.format("concept"),
            r"concept 3_7: score 2 3 is not null or a number in \[0, 2\]",
        ),
        (
            set_scores("instruct", "3_12", [0, -1, 0, 0, 0]),
            RELEASE_SCORES.format("instruct"),
            "concept 3_12: score 1 -1 is not",
        ),
        (
            set_scores("fluency", "10_5", [0, 1, "2", 1, 0]),
            RELEASE_SCORES.format("fluency"),
            "concept 10_5: score 2 '2' is not",
        ),
        (
            set_scores("fluency", "10_5", [0, 1, True, 1, 0]),
            RELEASE_SCORES.format("fluency"),
            "concept 10_5: score 2 True is not",
        ),
        (
            set_scores("concept", "3_7", [2, 1, 0, 2]),
            RELEASE_SCORES.format("concept"),
            "concept 3_7: 4 scores, expected 5",
        ),
        (
            set_scores("instruct", "10_2", [1] * 10),
            RELEASE_SCORES.format("instruct"),
            "concept 10_2: 10 scores, expected 5",
        ),
        (
            mutate(RELEASE_SCORES.format("fluency"), "3_7", [2, 2, 2, 2, 2]),
            RELEASE_SCORES.format("fluency"),
            "concept 3_7: expected an object with a list 'scores'",
        ),
        (
            mutate(RELEASE_SCORES.format("fluency"), "3_7", {"mean_score": 2.0}),
            RELEASE_SCORES.format("fluency"),
            "concept 3_7: expected an object",
        ),
        (
            mutate(RELEASE_SCORES.format("fluency"), "3_7", entry([2] * 5, "0.4")),
            RELEASE_SCORES.format("fluency"),
            "concept 3_7: best_steering_factor '0.4' is not a finite number",
        ),
        (
            mutate(RELEASE_SCORES.format("fluency"), "3_7", entry([2] * 5, -0.4)),
            RELEASE_SCORES.format("fluency"),
            "concept 3_7: best_steering_factor -0.4 is not a finite number >= 0",
        ),
    ],
)
def test_malformed_files_are_named(tmp_path, change, file, message):
    files = release()
    change(files)
    data = write(tmp_path, files)
    with pytest.raises(SaesteerError, match=message) as error:  # a DataFileError for bad JSON
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
