"""Instructions per concept: the builtin pool, seeding, the paper's files."""

import json

import pytest

from saesteer.concepts.instructions import INSTRUCTIONS, concept_instructions
from saesteer.errors import ConfigError


def test_builtin_instructions_are_many_and_distinct():
    assert len(INSTRUCTIONS) >= 50
    assert len(set(INSTRUCTIONS)) == len(INSTRUCTIONS)


def test_instructions_per_concept_are_seeded_by_the_concept():
    a = concept_instructions("builtin", 5, [1, 2, 3], 10, 0)
    b = concept_instructions("builtin", 5, [3, 9], 10, 0)
    assert a[3] == b[3]  # another concept list does not change concept 3's instructions
    assert len(set(a[1])) == 10 and a[1] != a[2]
    assert concept_instructions("builtin", 5, [1], 10, 1)[1] != a[1]


def test_paper_instruction_cache_and_errors(tmp_path):
    cache = tmp_path / "cache.json"
    cache.write_text(json.dumps({"5_1": [f"q{i}" for i in range(10)], "5_2": ["q"] * 3}))
    assert concept_instructions({"file": str(cache)}, 5, [1], 10, 0)[1][0] == "q0"
    with pytest.raises(ConfigError, match="5_2 has 3"):
        concept_instructions({"file": str(cache)}, 5, [2], 10, 0)
    with pytest.raises(ConfigError, match="no entry 5_7"):
        concept_instructions({"file": str(cache)}, 5, [7], 10, 0)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        concept_instructions({"file": str(bad)}, 5, [1], 10, 0)
    pool = tmp_path / "pool.txt"
    pool.write_text("one\ntwo\n\nthree\n")
    with pytest.raises(ConfigError, match="3 instructions, need at least 10"):
        concept_instructions({"file": str(pool)}, 5, [1], 10, 0)
    assert sorted(concept_instructions({"file": str(pool)}, 5, [1], 3, 0)[1]) == [
        "one",
        "three",
        "two",
    ]
