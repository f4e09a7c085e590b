"""The CLI: each command's flags come from its function's signature."""

import json
import logging
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
