"""The seeds' configs and the verdict table of `saesteer robustness` (the runs themselves
are Snakemake runs like any other; docs/results.md has the measured table)."""

from saesteer.config import layer_settings, read_config, resolve_config
from saesteer.robustness import render, seeded_config, verdict_table


def test_the_configs_own_seed_is_its_own_run_and_another_seeds_everything():
    demo = read_config("config/config.yaml")
    assert seeded_config(demo, 0)["run"] == demo["run"]  # its seeds are all 0 already
    other = resolve_config(seeded_config(demo, 7))
    assert other["run"] == f"{demo['run']}-seed7"
    assert other["features"]["seed"] == 7
    # Block 0 has training settings of its own (a per-layer override): seeded too.
    for layer in (0, 16):
        assert layer_settings(other, layer)["sae"]["train"]["seed"] == 7
    assert demo["features"]["seed"] == 0  # the config read is left as it was


def _found(*verdicts):
    names = ("a", "b")
    return {
        "verdicts": [
            {"finding": n, "paper": n, "verdict": v, "value": 1.0, "low": 0.5, "high": 2.0, "n": 9}
            for n, v in zip(names, verdicts, strict=True)
        ]
    }


def test_the_table_says_which_findings_keep_their_verdict():
    table = verdict_table({0: _found("agrees", "agrees"), 1: _found("agrees", "inconclusive")})
    assert table["a"]["agree"] and not table["b"]["agree"]
    assert table["b"]["seeds"]["1"]["verdict"] == "inconclusive"
    text = render(table)
    assert text.splitlines()[1].endswith("yes") and text.splitlines()[2].endswith("NO")
    assert "agrees 1 [0.5, 2]" in text
