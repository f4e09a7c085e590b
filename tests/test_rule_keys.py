"""No user's value is dropped on its way from the config to a stage: every key of the
schema reaches a stage's settings (or the workflow reads it itself, listed below), and
every rule that passes part of a section passes every key its stage reads."""

import importlib

import pytest
import yaml

from saesteer import cli
from saesteer.config import SCHEMA, section_keys
from saesteer.errors import ConfigError
from saesteer.settings import settings_fields
from saesteer.stages import RULE_KEYS, STAGES

# Keys no stage's settings dataclass reads, each with where it goes instead.
READ_ELSEWHERE = {
    "model.device": "every model job's --device",
    "model.mem_mb": "the model jobs' mem_mb resource",
    "sae": "the whole section is the `sae` stage's settings (saesteer.saes resolves it)",
    "sae_sweep": "the sae_sweep stage takes variants and features, sae_sweep_table the gates",
    "best_factor.released": "a file input of best_factors (--released)",
    "generation.n_prefixes": "the generations rule resolves the prefixes (resolve_prefixes)",
    "concepts.source": "which concept rules the workflow runs (generate or released)",
    "concepts.layers": "which layers the concept rules run at",
    "concepts.released": "the released_concepts stage's settings (data_dir, model_dir)",
    "features": "the `features` stage's settings, per layer",
    "layers": "the DAG's layer wildcards and each layer's overrides",
    "run": "the results folder",
}


def _settings_classes() -> dict[str, type]:
    classes = {}
    for stage in STAGES:
        cls = cli._settings_class(importlib.import_module(f"saesteer.stages.{stage}").run)
        if cls is not None:
            classes[stage] = cls
    return classes


def _source(cls: type, field: str) -> str | None:
    """The config section a settings field comes from: the last of its sections that has
    the key (settings_for fills a later section over an earlier), None if none does."""
    found = [s for s in cls.SECTIONS if field in section_keys(s)]
    return found[-1] if found else None


def _dropped() -> list[str]:
    """The schema keys no stage reads and the workflow does not read itself."""
    read = {
        (section, f.name)
        for cls in _settings_classes().values()
        for f in settings_fields(cls)
        if (section := _source(cls, f.name))
    }
    with open(SCHEMA) as f:
        sections = list(yaml.safe_load(f)["properties"])
    dropped = []
    for section in sections:
        if section in READ_ELSEWHERE:
            continue
        try:
            keys = section_keys(section)
        except ConfigError:
            continue
        if not keys:  # a value, not a section (run, layers)
            continue
        for key in keys:
            if (section, key) not in read and f"{section}.{key}" not in READ_ELSEWHERE:
                dropped.append(f"{section}.{key}")
    return dropped


def test_every_schema_key_reaches_a_stage_or_is_read_by_the_workflow():
    assert _dropped() == []


def test_the_check_catches_a_key_no_stage_reads(monkeypatch):
    real = section_keys

    def with_extra(section):
        return real(section) | ({"nobody_reads": {}} if section == "corpus" else {})

    monkeypatch.setattr(f"{__name__}.section_keys", with_extra)
    assert _dropped() == ["corpus.nobody_reads"]


@pytest.mark.parametrize("stage", sorted(RULE_KEYS))
def test_a_rule_that_passes_part_of_a_section_passes_every_key_its_stage_reads(stage):
    cls = _settings_classes()[stage]
    passed = RULE_KEYS[stage]
    fields = {f.name for f in settings_fields(cls)}
    for section, keys in passed.items():
        assert section in cls.SECTIONS, f"{stage} does not read {section}"
        assert set(keys) <= fields, f"{stage} reads none of {set(keys) - fields}"
        reads = {name for name in fields if _source(cls, name) == section}
        assert reads <= set(keys), f"the {stage} rule drops {section}.{reads - set(keys)}"
        # a key read from a later section is passed from there, not from this one
        assert all(_source(cls, key) == section for key in keys), stage


def test_the_check_catches_a_dropped_key(monkeypatch):
    """The test above fails when a rule leaves out a key its stage reads."""
    short = {"concepts": ["thresholds"], "findings": ["bootstrap", "seed"]}
    monkeypatch.setitem(RULE_KEYS, "concept_table", short)
    with pytest.raises(AssertionError, match="aggregation"):
        test_a_rule_that_passes_part_of_a_section_passes_every_key_its_stage_reads("concept_table")
