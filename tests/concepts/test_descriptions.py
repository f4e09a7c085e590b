"""A concept per feature: derived descriptions and the concept list."""

import polars as pl

from saesteer.concepts.descriptions import concept_list, derived_description


def test_derived_description_and_concept_table():
    assert (
        derived_description(["▁ocean", " sea", "ocean", ",", "Ġwave", "Ċ"], ["tide", "tide", "sea"])
        == 'words like "ocean", "sea", "wave" and contexts around "tide", "sea"'
    )
    lens = pl.DataFrame({"feature": [1, 1, 2], "rank": [1, 0, 0], "token": [" b", " a", " c"]})
    acts = pl.DataFrame(
        {"feature": [1, 2], "tokens": [["x", "y"], ["z"]], "max_token_index": [1, 0]}
    )
    table = concept_list(3, [1, 2], lens, acts, {2: "the sea"})
    assert table.rows() == [
        (3, 1, 'words like "a", "b" and contexts around "y"', "derived"),
        (3, 2, "the sea", "neuronpedia"),
    ]
