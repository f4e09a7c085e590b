"""Settings dataclasses from config sections: the fields a stage reads (an embedded
settings dataclass's keys flat beside its own), the keys it cannot do without, and
`settings_for`, which builds one with the schema's defaults (`config.section_defaults`)
for what a section leaves out."""

from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from saesteer.config import section_defaults
from saesteer.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")


def _embedded(cls: type) -> dict[str, type]:
    """The fields of settings dataclass `cls` that embed another settings dataclass (e.g.
    the sampling settings inside the generation settings), optional or not: their keys sit
    flat in the same config section, beside the outer class's own."""
    hints = typing.get_type_hints(cls)
    embedded = {}
    for f in dataclasses.fields(cls):
        kinds = [k for k in typing.get_args(hints[f.name]) if k is not type(None)]
        kind = kinds[0] if len(kinds) == 1 else hints[f.name]
        if dataclasses.is_dataclass(kind):
            embedded[f.name] = kind
    return embedded


def settings_fields(cls: type) -> list[dataclasses.Field]:
    """The flat fields a settings dataclass reads from its sections: its own, and in place
    of an embedded settings dataclass, that class's fields."""
    inner = _embedded(cls)
    fields: list[dataclasses.Field] = []
    for f in dataclasses.fields(cls):
        fields += settings_fields(inner[f.name]) if f.name in inner else [f]
    return fields


def required_keys(cls: type) -> set[str]:
    """The flat keys a settings dataclass cannot do without: its fields with no default of
    their own (an embedded settings dataclass with a default needs none of its keys)."""
    inner = _embedded(cls)
    keys: set[str] = set()
    for f in dataclasses.fields(cls):
        if not _has_default(f):
            keys |= required_keys(inner[f.name]) if f.name in inner else {f.name}
    return keys


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def settings_for(cls: type[T], section: Mapping[str, Any] | None = None, **overrides) -> T:
    """A settings dataclass from a config section: its fields by name (an embedded settings
    dataclass built from the same flat keys), the schema's defaults (of the sections in
    `cls.SECTIONS`, a later one over an earlier) for what `section` and `overrides` leave
    out, logged where the field has no default of its own; other keys are ignored. Lists
    become tuples (the dataclasses are frozen)."""
    given = {**(section or {}), **overrides}
    values: dict = {}
    for name in cls.SECTIONS:
        values.update(section_defaults(name))
    values.update(given)
    filled = sorted(required_keys(cls) - set(given))
    missing = [name for name in filled if name not in values]
    if missing:
        raise ConfigError(f"{', '.join(cls.SECTIONS)}: no value for {missing}")
    if filled:
        log.info("settings %s: the schema's default for %s", cls.__name__, ", ".join(filled))
    return _build(cls, values)


def _build(cls: type[T], values: dict) -> T:
    """`cls` from flat `values`: a field absent from them keeps its own default, and so
    does an embedded settings dataclass whose own keys are absent."""
    inner = _embedded(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in inner:
            if required_keys(inner[f.name]) <= set(values):
                kwargs[f.name] = _build(inner[f.name], values)
        elif f.name in values:
            kwargs[f.name] = _frozen(values[f.name])
    return cls(**kwargs)


def _frozen(value: Any) -> Any:
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value
