"""Concepts, instructions, answer generation and DiffMean."""

import json

import polars as pl
import pytest
import torch

from saesteer.concepts import (
    PROMPTING_TEMPLATE,
    chat_ids,
    concept_jobs,
    concept_table,
    derived_description,
    end_of_turn_ids,
    generate_concepts,
    protocol_sampling,
)
from saesteer.config import ConfigError
from saesteer.diffmean import diffmean_directions, example_token_ids
from saesteer.generation import SamplingSettings, row_seed, sample_steered, stop_tokens
from saesteer.hooks import block_output
from saesteer.instructions import INSTRUCTIONS, concept_instructions
from saesteer.prompts import encode_prompt
from saesteer.steering import steering_directions
from tests.conftest import random_sae


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


def test_derived_description_and_concept_table():
    assert (
        derived_description(["▁ocean", " sea", "ocean", ",", "Ġwave", "Ċ"], ["tide", "tide", "sea"])
        == 'words like "ocean", "sea", "wave" and contexts around "tide", "sea"'
    )
    lens = pl.DataFrame({"feature": [1, 1, 2], "rank": [1, 0, 0], "token": [" b", " a", " c"]})
    acts = pl.DataFrame(
        {"feature": [1, 2], "tokens": [["x", "y"], ["z"]], "max_token_index": [1, 0]}
    )
    table = concept_table(3, [1, 2], lens, acts, {2: "the sea"})
    assert table.rows() == [
        (3, 1, 'words like "a", "b" and contexts around "y"', "derived"),
        (3, 2, "the sea", "neuronpedia"),
    ]


def test_concept_jobs_cover_the_protocol():
    concepts = pl.DataFrame({"feature": [4, 9], "concept": ["cats", "rain"]})
    instructions = {4: [f"a{i}" for i in range(10)], 9: [f"b{i}" for i in range(10)]}
    jobs = concept_jobs(concepts, instructions, [1.0, 2.0, 4.0], 5)
    count = {m: sum(j.method == m for j in jobs) for m in ("sae", "diffmean", "prompting")}
    assert count == {"sae": 2 * 3 * 10, "diffmean": 2 * 3 * 10, "prompting": 2 * 5}
    prompted = [j for j in jobs if j.method == "prompting"]
    assert prompted[0].prompt == PROMPTING_TEMPLATE.format(instruction="a5", concept="cats")
    assert {j.instruction_id for j in prompted} == {5, 6, 7, 8, 9}


def test_chat_prompt_needs_a_template(tiny_model):
    _, tokenizer = tiny_model
    assert chat_ids(tokenizer, "w1 w2") == tokenizer("<s> w5 w1 w2 </s> w6")["input_ids"][-6:]

    class Plain:
        chat_template = None

    with pytest.raises(ValueError, match="chat template"):
        chat_ids(Plain(), "hi")


def test_answers_do_not_depend_on_the_batch(any_tiny_model):
    """Each row has its own random stream and steering: the same rows generated with one
    concept at a time, in batches of 1 and chunks of 3 rows, are the same texts."""
    model, tokenizer = any_tiny_model
    sae = random_sae("standard", layer=2)
    concepts = pl.DataFrame({"layer": [2, 2], "feature": [3, 11], "concept": ["w7", "w8"]})
    instructions = {3: ["w1", "w2 w3", "w4"], 11: ["w9", "w1 w1", "w2"]}
    rows = steering_directions(sae, [3, 11])
    directions = {"sae": {3: rows[0], 11: rows[1]}, "diffmean": {3: -rows[0], 11: -rows[1]}}
    settings = SamplingSettings(max_new_tokens=5, stop=None, batch_size=64)
    both = generate_concepts(
        model, tokenizer, sae, 2, concepts, instructions, [1.0, 8.0], directions, 2, 0, settings
    )
    assert both.height == 2 * (2 * 2 * 3) + 2 * 1
    assert set(both.filter(pl.col("method") == "prompting")["split"]) == {"test"}
    one = generate_concepts(
        model,
        tokenizer,
        sae,
        2,
        concepts[1:],
        {11: instructions[11]},
        [8.0],
        directions,
        2,
        0,
        SamplingSettings(max_new_tokens=5, stop=None, batch_size=1),
        chunk_rows=3,
    )
    keys = ["method", "feature", "factor", "instruction_id"]
    joined = one.join(both, on=keys, suffix="_both")
    assert joined.height == one.height
    assert joined["response"].to_list() == joined["response_both"].to_list()
    # steering changes answers: the two methods' directions differ
    sae_rows = both.filter((pl.col("method") == "sae") & (pl.col("factor") == 8.0))
    dm_rows = both.filter((pl.col("method") == "diffmean") & (pl.col("factor") == 8.0))
    assert sae_rows["response"].to_list() != dm_rows["response"].to_list()
    # a method without a direction for a concept skips its rows
    partial = {"sae": directions["sae"], "diffmean": {3: -rows[0]}}
    fewer = generate_concepts(
        model, tokenizer, sae, 2, concepts, instructions, [1.0], partial, 2, 0, settings
    )
    assert set(fewer.filter(pl.col("method") == "diffmean")["feature"]) == {3}


@pytest.mark.parametrize("protocol", ["paper", "chat"])
def test_each_protocol_prompts_and_judges_as_it_says(any_tiny_model, protocol):
    """paper: BOS + the raw instruction, the judge reads instruction + continuation (as
    in the released answers); chat: the instruction as a chat turn, the judge reads the
    answer. Each row equals the sampler run on that prompt by hand."""
    model, tokenizer = any_tiny_model
    sae = random_sae("standard", layer=2)
    concepts = pl.DataFrame({"layer": [2], "feature": [5], "concept": ["w7"]})
    instructions = {5: ["w1 w2", "w3 w4"]}
    direction = steering_directions(sae, [5])[0]
    settings = SamplingSettings(max_new_tokens=4, batch_size=8)
    frame = generate_concepts(
        model,
        tokenizer,
        sae,
        2,
        concepts,
        instructions,
        [4.0],
        {"sae": {5: direction}},
        1,
        3,
        settings,
        protocol=protocol,
    )
    row = frame.filter((pl.col("method") == "sae") & (pl.col("instruction_id") == 1)).row(
        0, named=True
    )
    prompt = (
        encode_prompt(tokenizer, "w3 w4") if protocol == "paper" else chat_ids(tokenizer, "w3 w4")
    )
    assert prompt[0] == tokenizer.bos_token_id
    stops = stop_tokens(tokenizer, "." if protocol == "paper" else None, 128)
    stops[tokenizer.eos_token_id] = True
    (ids,) = sample_steered(
        model,
        sae,
        2,
        [prompt],
        direction[None],
        torch.tensor([4.0]),
        [row_seed(3, "sae", 5, 4.0, 1)],
        stops,
        tokenizer.eos_token_id,
        protocol_sampling(protocol, settings),
    )
    words = tokenizer.decode(ids, skip_special_tokens=True)
    assert row["response"].strip() == words.strip() and row["n_tokens"] == len(ids)
    expected = f"w3 w4{row['response']}" if protocol == "paper" else row["response"]
    assert row["text"] == expected
    prompting = frame.filter(pl.col("method") == "prompting").row(0, named=True)
    assert "w7" not in prompting["text"][: len("w3 w4")]  # the concept hint is not judged
    assert prompting["text"].startswith("w3 w4") == (protocol == "paper")


def test_the_paper_protocol_stops_at_the_first_full_stop():
    assert protocol_sampling("paper", SamplingSettings(stop=None)).stop == "."
    assert protocol_sampling("chat", SamplingSettings()).stop is None
    with pytest.raises(ValueError, match="concepts.protocol"):
        protocol_sampling("raw", SamplingSettings())


def test_answers_end_at_the_models_end_of_turn(tiny_model):
    """Gemma-style: the turn ends with a token that is not the tokenizer's EOS."""
    model, tokenizer = tiny_model
    original = model.generation_config.eos_token_id
    try:
        model.generation_config.eos_token_id = [2, 9]
        assert end_of_turn_ids(model, tokenizer) == [2, 9]
    finally:
        model.generation_config.eos_token_id = original
    assert end_of_turn_ids(model, tokenizer) == sorted({2, *([original] if original else [])})


def test_diffmean_matches_a_per_example_loop(any_tiny_model):
    model, tokenizer = any_tiny_model
    layer = 1
    examples = {
        1: [[5, 6, 7], [8, 9]],
        2: [[10, 11, 12, 13], [14]],
        3: [[15, 16], [17, 18, 19], [20]],
    }
    norms = torch.tensor([1.0, 2.0, 3.0])
    fast = diffmean_directions(model, tokenizer, layer, examples, [1, 2, 3], norms, batch_size=2)

    def mean_of(texts):  # one unpadded example at a time, BOS dropped
        rows = [block_output(model, layer, torch.tensor([[1, *t]]))[0, 1:] for t in texts]
        return torch.cat(rows).float().mean(0)

    means = {f: mean_of(t) for f, t in examples.items()}
    for i, f in enumerate([1, 2, 3]):
        others = torch.stack([m for g, m in means.items() if g != f]).mean(0)
        expected = means[f] - others
        expected = expected / expected.norm() * norms[i]
        torch.testing.assert_close(fast[f], expected, rtol=1e-4, atol=1e-5)
    # A source's own leading BOS is not doubled.
    with_bos = {f: [[1, *t] for t in texts] for f, texts in examples.items()}
    again = diffmean_directions(model, tokenizer, layer, with_bos, [1, 2, 3], norms)
    torch.testing.assert_close(again[2], fast[2], rtol=1e-4, atol=1e-5)
    # Concepts without examples get no direction; fewer than 2 concepts give none.
    assert set(diffmean_directions(model, tokenizer, layer, examples, [1, 2, 9], norms)) == {1, 2}
    assert diffmean_directions(model, tokenizer, layer, examples, [1], norms[:1]) == {}


def test_example_token_ids_from_ids_or_strings(tiny_model):
    _, tokenizer = tiny_model
    acts = pl.DataFrame(
        {"feature": [1, 2], "tokens": [["w1", "▁w2"], ["w3", "▁w4"]], "token_ids": [[4, 5], None]},
        schema={"feature": pl.Int64, "tokens": pl.List(pl.Utf8), "token_ids": pl.List(pl.Int64)},
    )
    got = example_token_ids(acts, tokenizer)
    assert got[1] == [[4, 5]]
    assert got[2] == [tokenizer("w3 w4", add_special_tokens=False)["input_ids"]]
