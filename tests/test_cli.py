"""The CLI: each command's flags come from its function's signature."""

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import pytest

from saesteer import cli
from saesteer.errors import ConfigError
from saesteer.stages import STAGES


@dataclass(frozen=True)
class Knobs:
    SECTIONS: ClassVar = ("logit_lens",)
    top_k: int
    batch_size: int


def stage(
    *,
    model: Annotated[Path, "model.json"],
    layers: Annotated[list[int], "the layers"],
    extra: Annotated[Path | None, "an optional input"] = None,
    shards: Annotated[list[Path], "optional files"] = (),
    settings: Knobs,
    fast: Annotated[bool, "a switch"] = False,
    out: Annotated[Path, "the output"],
) -> None:
    calls.append(locals())


calls: list[dict] = []


def test_flags_types_and_settings_come_from_the_signature():
    calls.clear()
    argv = ["--model", "m.json", "--layers", "3", "5", "--out", "o.parquet"]
    cli.call(stage, [*argv, "--settings", '{"top_k": 7}'], "saesteer stage")
    (got,) = calls
    assert got["model"] == Path("m.json") and got["out"] == Path("o.parquet")
    assert got["layers"] == [3, 5] and got["extra"] is None and got["shards"] == ()
    assert got["fast"] is False
    # the JSON over the schema's logit_lens defaults
    assert got["settings"] == Knobs(top_k=7, batch_size=256)
    cli.call(stage, [*argv, "--extra", "e", "--shards", "a", "b", "--fast"], "saesteer stage")
    assert calls[-1]["extra"] == Path("e") and calls[-1]["shards"] == [Path("a"), Path("b")]
    assert calls[-1]["fast"] is True and calls[-1]["settings"] == Knobs(20, 256)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--layers", "3", "--out", "o"], "the following arguments are required: --model"),
        (["--model", "m", "--layers", "x", "--out", "o"], "invalid int value: 'x'"),
        (["--model", "m", "--layers", "3", "--out", "o", "--settings", "{x"], "not valid JSON"),
    ],
)
def test_a_bad_command_line_is_refused_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.call(stage, argv, "saesteer stage")
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_every_command_has_help(capsys):
    """`saesteer <command> --help` builds every stage's parser from its signature."""
    own = {"check-config", "estimate", "robustness"}
    assert set(cli.COMMANDS) == own | {s.replace("_", "-") for s in STAGES}
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as exit:
            cli.main([name, "--help"])
        assert exit.value.code == 0
        assert f"usage: saesteer {name}" in capsys.readouterr().out


def test_a_saesteer_error_is_one_line_and_status_2(monkeypatch, caplog):
    def failing(*, settings: dict) -> None:
        raise ConfigError(f"generation.max_features: {settings['n']} is too small")

    monkeypatch.setattr(cli, "command", lambda name: failing)
    with caplog.at_level(logging.ERROR):
        assert cli.main(["features", "--settings", json.dumps({"n": 1})]) == 2
    assert "generation.max_features: 1 is too small" in caplog.text


def test_any_other_error_is_a_bug_and_keeps_its_traceback(monkeypatch):
    def broken(*, settings: dict) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "command", lambda name: broken)
    with pytest.raises(KeyError):
        cli.main(["features", "--settings", "{}"])


def test_a_stage_help_lists_its_settings_keys_from_the_schema(capsys):
    with pytest.raises(SystemExit):
        cli.main(["logit-lens", "--help"])
    out = capsys.readouterr().out
    assert "--settings JSON: the config section `logit_lens`" in out
    # each key with its schema type, default and description
    assert "top_k (integer; 20)" in out and "batch_size (integer; 256)" in out
    with pytest.raises(SystemExit):
        cli.main(["generations", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert 'allocation (proportional | equal; "proportional"): how max_features' in out


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"topk": 5}, "unknown key 'topk' of logit_lens (did you mean 'top_k'?)"),
        ({"top_k": 5, "zzz": 1}, "unknown key 'zzz' of logit_lens"),
    ],
)
def test_an_unknown_settings_key_is_refused_naming_the_nearest(settings, message, caplog):
    calls.clear()
    argv = ["--model", "m", "--layers", "3", "--out", "o", "--settings", json.dumps(settings)]
    with pytest.raises(ConfigError, match=re.escape(message)):
        cli.call(stage, argv, "saesteer stage")
    assert calls == []
    with caplog.at_level(logging.ERROR):
        real = ["logit-lens", "--model", "m", "--sae", "s", "--features", "f", "--out", "o"]
        assert cli.main([*real, "--settings", json.dumps(settings)]) == 2
    assert message in caplog.text


def test_a_key_of_the_section_the_stage_does_not_read_is_accepted():
    """The workflow may pass a whole section; only keys of no section are refused."""
    calls.clear()
    argv = ["--model", "m", "--layers", "3", "--out", "o"]
    cli.call(stage, [*argv, "--settings", '{"top_k": 7, "batch_size": 8}'], "saesteer stage")
    assert calls[-1]["settings"] == Knobs(7, 8)


def test_own_commands_have_their_own_help(capsys):
    for name, words in [("check-config", "Validate a run config"), ("estimate", "a run's size")]:
        with pytest.raises(SystemExit):
            cli.main([name, "--help"])
        out = capsys.readouterr().out
        assert words in out and cli.__doc__.splitlines()[0] not in out


def test_a_stage_logs_its_command_line_first(monkeypatch, caplog):
    monkeypatch.setattr(cli, "command", lambda name: stage)  # a stage of this module
    argv = ["--model", "m m.json", "--layers", "3", "--out", "o"]
    with caplog.at_level(logging.INFO):
        assert cli.main(["features", *argv]) == 0
    assert caplog.records[0].getMessage() == (
        "command: saesteer features --model 'm m.json' --layers 3 --out o"
    )


def test_a_closed_pipe_ends_quietly():
    """`saesteer check-config ... | head`: the reader is gone before the output is written."""
    import subprocess
    import sys

    config = Path(__file__).parents[1] / "config" / "config.yaml"
    argv = [sys.executable, "-m", "saesteer.cli", "check-config", str(config)]
    proc = subprocess.Popen(
        [*argv, "--no-device-check"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # no reader: every write fails with EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait() == 141
    assert "Traceback" not in err and "BrokenPipe" not in err
