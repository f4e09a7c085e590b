"""`saesteer <command>`: each stage of the workflow (the rule of the same name runs it, see
`saesteer.stages`), `check-config` and `estimate`.

A command's flags come from its function's signature: `--name` per keyword argument, typed
by its annotation (`Annotated[type, help]`); `settings` is a config section as JSON, its
missing keys filled from the schema's defaults, a key it does not know refused (exit
status 2, naming the nearest one); a stage's `--help` lists the keys. Errors saesteer raises
on purpose (`SaesteerError`) end the command with one line and exit status 2. A stage's log
begins with the command line it ran.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import errno
import importlib
import inspect
import json
import logging
import os
import shlex
import sys
import textwrap
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from saesteer import __version__
from saesteer.config import section_keys
from saesteer.errors import ConfigError, SaesteerError
from saesteer.settings import settings_fields, settings_for
from saesteer.stages import STAGES

log = logging.getLogger("saesteer")


def check_config(
    config: Annotated[Path, "the run config"],
    /,
    *,
    no_device_check: Annotated[
        bool, "skip checking model.device here (a login node that only submits jobs)"
    ] = False,
) -> None:
    """Validate a run config and print it resolved: exactly what the workflow runs with
    `--configfile FILE`, the file over the schema's defaults."""
    import yaml

    from saesteer.config import configured_layers
    from saesteer.preflight import load_config

    resolved = load_config(config, check_device=not no_device_check)
    print(f"# {config}: ok, run {resolved['run']!r}, layers {configured_layers(resolved)}")
    print(yaml.safe_dump(resolved, sort_keys=True), end="")


def estimate(
    config: Annotated[Path, "the run config"],
    /,
    *targets: Annotated[str, "files to make (Snakemake targets); none: the whole run"],
    features_per_layer: Annotated[
        int | None, "features a layer where the config's feature file is not here yet"
    ] = None,
    gpu: Annotated[str, "the GPU to project the run on"] = "A40",
    rates: Annotated[Path | None, "achieved GFLOP/s per path (make bench writes one)"] = None,
    json_out: Annotated[Path | None, "also write the estimate as JSON here"] = None,
) -> None:
    """Print a run's size before it starts: jobs per rule (a dry run of the workflow),
    tokens, FLOPs, judge calls, and its wall time here and on a GPU; of the jobs that make
    TARGETS only, when given."""
    from saesteer.estimate import estimate as size_of
    from saesteer.estimate import render

    result = size_of(config, features_per_layer, gpu, rates, list(targets))
    print(render(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


def robustness(
    config: Annotated[Path, "the run config"],
    /,
    *,
    seeds: Annotated[list[int], "seeds of feature sampling and SAE training"] = (0, 1, 2),
    cores: Annotated[str, "snakemake --cores"] = "all",
) -> None:
    """Rerun a config under several seeds of feature sampling and SAE training (Snakemake,
    from the repository root) and print each finding's verdict under each seed; the table
    also goes to results/robustness/<run>.json."""
    from saesteer.robustness import render, run_seeds

    table = run_seeds(config, list(seeds), cores)
    print(render(table))


COMMANDS: dict[str, str] = {
    "check-config": "validate a run config, print it resolved",
    "estimate": "a run's size and projected wall time, before it starts",
    "robustness": "rerun a config under 3 seeds, print each finding's verdict per seed",
    **{name.replace("_", "-"): help for name, help in STAGES.items()},
}


def command(name: str) -> Callable[..., None]:
    """The function behind a command; a stage's module is imported only here."""
    own = {"check-config": check_config, "estimate": estimate, "robustness": robustness}
    if name in own:
        return own[name]
    return importlib.import_module(f"saesteer.stages.{name.replace('-', '_')}").run


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e})") from None


def _unwrap(hint) -> tuple[Any, str | None]:
    """(type, help) of an annotation, `X | None` read as X."""
    help = None
    if typing.get_origin(hint) is Annotated:
        hint, help = typing.get_args(hint)[:2]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else hint
    return hint, help


def _add_argument(parser, param: inspect.Parameter, hint) -> None:
    kind, help = _unwrap(hint)
    required = param.default is inspect.Parameter.empty
    options: dict[str, Any] = {"help": help}
    if param.kind is inspect.Parameter.VAR_POSITIONAL:  # *names: zero or more
        names, kind = [param.name], list[kind]
        required = False
    elif param.kind is inspect.Parameter.POSITIONAL_ONLY:
        names = [param.name]
    else:
        names = ["--" + param.name.replace("_", "-")]
        options |= {"required": required, "default": None if required else param.default}
    if kind is bool:
        options = {"help": help, "action": "store_true"}
    elif param.name == "settings":
        options |= {"type": _json, "metavar": "JSON"}
        if dataclasses.is_dataclass(kind):  # the schema's defaults fill what it leaves out
            options |= {"required": False, "default": {}}
    elif typing.get_origin(kind) is list:
        item = typing.get_args(kind)[0]
        options |= {"type": item, "nargs": "+" if required else "*"}
    elif kind in (int, float, str, Path):
        options["type"] = kind
    parser.add_argument(*names, **options)


def _settings_class(func: Callable) -> type | None:
    hint, _ = _unwrap(typing.get_type_hints(func).get("settings"))
    return hint if dataclasses.is_dataclass(hint) else None


def _sections_keys(cls: type) -> dict[str, dict]:
    """Every key of `cls.SECTIONS` with its schema (a later section's over an earlier)."""
    known: dict[str, dict] = {}
    for section in cls.SECTIONS:
        known |= section_keys(section)
    return known


def settings_keys(cls: type) -> dict[str, dict]:
    """The keys `--settings` takes for a settings dataclass: its fields, each with the
    schema of the config key of that name (of the last of `cls.SECTIONS` that has it), or
    {} for a value the workflow sets."""
    known = _sections_keys(cls)
    return {f.name: known.get(f.name, {}) for f in settings_fields(cls)}


def _settings_help(cls: type) -> str:
    sections = ", ".join(f"`{s}`" for s in cls.SECTIONS) or "none: the workflow sets it"
    lines = [f"--settings JSON: the config section {sections}; keys (the schema's default):"]
    for key, schema in settings_keys(cls).items():
        kind = schema.get("type", "any")
        kind = " | ".join(schema["enum"]) if "enum" in schema else kind
        kind = "|".join(kind) if isinstance(kind, list) else kind
        default = json.dumps(schema["default"]) if "default" in schema else "required"
        what = schema.get("description", "set by the workflow" if not schema else "")
        text = f"{key} ({kind}; {default}){': ' + what if what else ''}"
        lines += textwrap.wrap(text, 88, initial_indent="  ", subsequent_indent="      ")
    return "\n".join(lines)


def parser_for(func: Callable, prog: str) -> argparse.ArgumentParser:
    # A stage's text is its module's; a command of this module has its own.
    own = func.__module__ == __name__
    cls = _settings_class(func)
    parser = argparse.ArgumentParser(
        prog=prog,
        description=inspect.getdoc(func) if own else inspect.getmodule(func).__doc__,
        epilog=_settings_help(cls) if cls else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hints = typing.get_type_hints(func, include_extras=True)
    for param in inspect.signature(func).parameters.values():
        _add_argument(parser, param, hints[param.name])
    return parser


def check_settings_keys(cls: type, given: dict) -> None:
    """Refuse a key that is neither a field of `cls` nor a key of its config sections (the
    workflow passes whole sections), naming the nearest valid key."""
    if not isinstance(given, dict):
        raise ConfigError(f"--settings: expected a JSON object, got {type(given).__name__}")
    valid = set(settings_keys(cls)) | set(_sections_keys(cls))
    for key in sorted(set(given) - valid):
        near = difflib.get_close_matches(key, sorted(valid), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        where = ", ".join(cls.SECTIONS) or "this command"
        raise ConfigError(f"--settings: unknown key {key!r} of {where}{hint}")


def disk_full(error: BaseException) -> bool:
    """Whether `error` says the disk is full: an OSError with ENOSPC, or a library's own
    error wrapping one (safetensors: "StorageFull", "No space left on device")."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    text = str(error)
    return "No space left on device" in text or "StorageFull" in text


def call(func: Callable, argv: list[str], prog: str) -> None:
    """Parse `argv` by `func`'s signature and call it; `settings` becomes its annotated
    settings dataclass (schema defaults for what the JSON leaves out)."""
    kwargs = vars(parser_for(func, prog).parse_intermixed_args(argv))
    cls = _settings_class(func)
    if "settings" in kwargs and cls:
        check_settings_keys(cls, kwargs["settings"])
        kwargs["settings"] = settings_for(cls, kwargs["settings"])
    positional = []
    for p in inspect.signature(func).parameters.values():
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            positional.append(kwargs.pop(p.name))
        elif p.kind is inspect.Parameter.VAR_POSITIONAL:
            positional += kwargs.pop(p.name)
    func(*positional, **kwargs)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parser = argparse.ArgumentParser(prog="saesteer", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help in COMMANDS.items():
        commands.add_parser(name, help=help, add_help=False)
    known, rest = parser.parse_known_args(argv)
    func = command(known.command)
    if func.__module__ != __name__ and "-h" not in rest and "--help" not in rest:
        # The first line of a job's log: the exact command it ran.
        log.info("command: %s", shlex.join(["saesteer", known.command, *rest]))
    try:
        call(func, rest, f"saesteer {known.command}")
        sys.stdout.flush()
    except SaesteerError as e:
        log.error("%s", e)
        return 2
    except BrokenPipeError:
        # The reader left (`saesteer check-config ... | head`): stop quietly, and keep
        # Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:
        if not disk_full(e):
            raise
        # One line, not a traceback from inside safetensors or pyarrow: what to do is plain.
        log.error("disk full: %s: %s; free space, then rerun", type(e).__name__, str(e)[:300])
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
