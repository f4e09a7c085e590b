"""Concept answers: the jobs, the prompts of each protocol, stops, batch invariance."""

from dataclasses import replace

import polars as pl
import pytest
import torch

from saesteer.concepts.answers import (
    PROMPTING_TEMPLATE,
    chat_ids,
    concept_jobs,
    end_of_turn_ids,
    generate_concepts,
    protocol_sampling,
)
from saesteer.errors import ConfigError, ModelError
from saesteer.generation import SteeredRows, sample_steered, stop_tokens
from saesteer.prompts import encode_prompt
from saesteer.sampling import SamplingSettings
from saesteer.seeds import row_seed
from saesteer.settings import settings_for
from saesteer.steering import SteeringTarget, steering_directions
from tests.helpers import random_sae


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

    with pytest.raises(ModelError, match="chat template"):
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
    settings = settings_for(SamplingSettings, max_new_tokens=5, stop=None, batch_size=64)
    both = generate_concepts(
        SteeringTarget(model, tokenizer, sae, 2),
        concepts,
        instructions,
        [1.0, 8.0],
        directions,
        2,
        settings,
    )
    assert both.height == 2 * (2 * 2 * 3) + 2 * 1
    assert set(both.filter(pl.col("method") == "prompting")["split"]) == {"test"}
    one = generate_concepts(
        SteeringTarget(model, tokenizer, sae, 2),
        concepts[1:],
        {11: instructions[11]},
        [8.0],
        directions,
        2,
        settings_for(SamplingSettings, max_new_tokens=5, stop=None, batch_size=1),
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
        SteeringTarget(model, tokenizer, sae, 2),
        concepts,
        instructions,
        [1.0],
        partial,
        2,
        settings,
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
    settings = settings_for(SamplingSettings, max_new_tokens=4, batch_size=8)
    frame = generate_concepts(
        SteeringTarget(model, tokenizer, sae, 2),
        concepts,
        instructions,
        [4.0],
        {"sae": {5: direction}},
        1,
        replace(settings, seed=3),
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
        SteeringTarget(model, tokenizer, sae, 2),
        SteeredRows(
            [prompt], direction[None], torch.tensor([4.0]), [row_seed(3, "sae", 5, 4.0, 1)]
        ),
        stops,
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
    assert protocol_sampling("paper", settings_for(SamplingSettings, stop=None)).stop == "."
    assert protocol_sampling("chat", settings_for(SamplingSettings)).stop is None
    with pytest.raises(ConfigError, match="concepts.protocol"):
        protocol_sampling("raw", settings_for(SamplingSettings))


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
