"""Run configuration: reading a config file and filling the schema's defaults, the one
place where defaults live. A leaf: it imports no model, SAE or data source, so parsing the
workflow stays light. The checks that need those sources are in `saesteer.preflight`."""

from __future__ import annotations

import copy
import functools
import glob
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from saesteer.errors import ConfigError

# Inside the package, so a non-editable install has it too.
SCHEMA = Path(__file__).with_name("schema.yaml")

# The largest k of GenSuccess@k (gen_metrics.GEN_SUCCESS_KS).
GEN_SUCCESS_TOP_K = 20


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key written twice in one mapping: PyYAML keeps the
    last and silently drops the first block, as strict loaders do not."""


def _unique_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"{loader.name}: key {key!r} is written twice in one mapping (lines "
                f"{seen[key] + 1} and {key_node.start_mark.line + 1}); YAML keeps only the last"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_config(path: str | Path) -> dict:
    """A config file's mapping, as written (no defaults yet); a duplicate key is an error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with path.open() as f:
        try:
            config = yaml.load(f, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config


def resolve_config(config: dict, schema: str | Path = SCHEMA) -> dict:
    """Check `config` against the schema in place, filling its defaults and making every
    `number` a float, and return it. Values that need a model, an SAE or a file to check
    are checked by `preflight.validate_config`."""
    _normalize_layers(config)
    _check_finite(config)
    _validate_schema(config, schema)
    return config


def section_defaults(section: str) -> dict:
    """The schema's defaults of one config section, by dotted path ("output_score",
    "activations.mine", "sae.train"): what a config that leaves the section out runs with."""
    return copy.deepcopy(_section_defaults(section))


@functools.cache
def _schema() -> dict:
    with open(SCHEMA) as f:
        return yaml.safe_load(f)


def _resolved(node: dict, root: dict) -> dict:
    while "$ref" in node:
        node = root["definitions"][node["$ref"].rpartition("/")[2]]
    return node


def _section_node(section: str) -> dict:
    root = _schema()
    node = root
    for part in section.split("."):
        node = node.get("properties", {}).get(part)
        if node is None:
            raise ConfigError(f"the config schema has no section {section!r}")
        node = _resolved(node, root)
    return node


def section_keys(section: str) -> dict[str, dict]:
    """Key -> its schema (type, default, description) of one config section."""
    root = _schema()
    return {
        key: _resolved(node, root)
        for key, node in _section_node(section).get("properties", {}).items()
    }


@functools.cache
def _section_defaults(section: str) -> dict:
    root = _schema()
    node = _section_node(section)
    values: dict = {}
    validator = _with_defaults(jsonschema.Draft7Validator)(
        {**node, "definitions": root["definitions"]}
    )
    for _ in validator.iter_errors(values):
        pass  # only the defaults it fills matter here
    return _as_schema_numbers(values, node, root)


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, so a rule's params (what Snakemake compares to
    decide a rerun) do not change with the order of a config's keys. Numbers are already
    canonical: the schema check makes every `number` field a float (10 and 10.0 alike)."""
    return json.dumps(value, sort_keys=True)


def layer_settings(config: dict, layer: int | str) -> dict:
    """This layer's effective settings, with `{layer}` templates filled in.

    Only this slice feeds a layer's jobs, so editing one layer reruns only that layer.
    """
    key = str(layer)
    if key not in config["layers"]:
        raise ConfigError(f"layers.{key}: layer {key} is not configured")
    own = config["layers"][key]
    sae = {**config.get("sae", {}), **own.get("sae", {})}
    if sae.get("source") == "train":
        sae["train"] = train_identity({**section_defaults("sae.train"), **sae.get("train", {})})
        # Keyed by everything the training reads, so new settings train into a new
        # directory and never replace (or delete) an SAE that took hours to make.
        sae["path"] = trained_sae_dir(config, int(key), sae["train"])
    for field in ("id", "path"):
        if field in sae:
            sae[field] = with_layer(sae[field], int(key), f"sae.{field}")
    features = copy.deepcopy(own.get("features", config.get("features")))
    factors = list(own.get("factors", config.get("generation", {}).get("factors", [])))
    return {"layer": int(key), "sae": sae, "features": features, "factors": factors}


def with_layer(template: str, layer: int, field: str) -> str:
    """`template` with `{layer}` filled in; any other brace (`{foo}`, `{}`, a lone `{`) is a
    ConfigError naming `field` (a literal brace is written `{{` or `}}`)."""
    import string

    refused = (
        f"{field}: {template!r} may hold only {{layer}} as a field "
        f"(write a literal brace as {{{{ or }}}})"
    )
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        if not names - {"layer"}:
            return template.format(layer=layer)
    except (ValueError, IndexError, KeyError) as e:  # a lone brace
        raise ConfigError(f"{refused}: {e}") from e
    raise ConfigError(f"{refused}: unknown field {sorted(names - {'layer'})[0]!r}")


# Keys added after runs were made, per config section: at these defaults they hash (and
# reach a rule's params) as if absent, so an SAE trained, or a job run, before the key
# existed keeps its directory and its outputs, and nothing downstream of it reruns. A
# stage fills the defaults back in (`settings_for`).
LATER_DEFAULTS = {
    "sae.train": {"init": "sae-lens"},
    "generation": {"live_only": False},
}


def without_later_defaults(section: str, values: dict) -> dict:
    """`values` of config `section` without its later keys at their defaults."""
    later = LATER_DEFAULTS.get(section, {})
    return {k: v for k, v in values.items() if later.get(k, object()) != v}


def train_identity(train: dict) -> dict:
    """`sae.train` as it names a trained SAE and reaches the rules' params."""
    return without_later_defaults("sae.train", train)


def trained_sae_dir(config: dict, layer: int, train: dict) -> str:
    """results/<run>/layers/<L>/sae-<key>: the key hashes the training settings, the
    model, and the corpus settings with the size and mtime of its text files."""
    corpus = config.get("corpus", {})
    names = {n for p in corpus.get("files", []) for n in glob.glob(p, recursive=True)}
    stats = {name: Path(name).stat() for name in names if Path(name).is_file()}
    files = sorted((name, st.st_size, st.st_mtime_ns) for name, st in stats.items())
    identity = {
        "layer": layer,
        "train": train_identity(train),
        "model": {k: config["model"].get(k) for k in ("source", "dtype")},
        "corpus": {k: v for k, v in corpus.items() if k != "files"},
        "corpus_files": files,
    }
    key = hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:12]
    return f"results/{config['run']}/layers/{layer}/sae-{key}"


def sweep_saes(config: dict) -> dict[tuple[str, int], dict]:
    """(variant, layer) -> {"train": ..., "path": ...} of every SAE the sweep trains: the
    variant's sae.train keys over each trained layer's own settings, in a directory keyed
    like the layer's own SAE (a variant equal to it is that very SAE)."""
    out = {}
    for variant, overrides in config.get("sae_sweep", {}).get("variants", {}).items():
        for layer in configured_layers(config):
            sae = layer_settings(config, layer)["sae"]
            if sae.get("source") != "train":
                raise ConfigError(
                    f"sae_sweep.variants.{variant}: layer {layer}'s SAE is not trained here "
                    f"(sae.source {sae.get('source')!r}); a sweep trains from its settings"
                )
            train = train_identity({**sae["train"], **overrides})
            out[(variant, layer)] = {"train": train, "path": trained_sae_dir(config, layer, train)}
    return out


def configured_layers(config: dict) -> list[int]:
    return sorted(int(k) for k in config["layers"])


def _normalize_layers(config: dict) -> None:
    """Layer keys as text, one spelling per layer ("01" is layer 1, written "1"); two
    spellings of one layer ("01" and 1) are refused, as neither would win silently."""
    layers = config.get("layers")
    if isinstance(layers, dict):
        normal: dict = {}
        spelled: dict = {}
        for k, v in layers.items():
            key = str(k)
            if key.isdigit():
                key = str(int(key))
                if key in normal:
                    raise ConfigError(
                        f"layers: {spelled[key]!r} and {k!r} both name layer {key}; keep one"
                    )
            spelled[key] = k
            normal[key] = {} if v is None else v
        config["layers"] = normal


def _field(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _check_finite(value: Any, path: tuple = ()) -> None:
    """NaN and +-inf pass JSON schema's `number` and every `minimum` (NaN compares false),
    so they are refused before the schema is read."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config error at {_field(path)}: {value} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_finite(item, (*path, i))


def _validate_schema(config: dict, schema_path: str | Path) -> None:
    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    validator = _with_defaults(jsonschema.Draft7Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        hint = ""
        if error.validator == "type" and isinstance(error.instance, str):
            hint = (
                " (a text where the schema wants another type: a value nested in "
                "snakemake's --config arrives as text; set it in a --configfile instead)"
            )
        raise ConfigError(f"config error at {_field(error.absolute_path)}: {error.message}{hint}")
    _as_schema_numbers(config, schema, schema)


def _as_schema_numbers(value: Any, schema: dict, root: dict) -> Any:
    """`value` with every integer in a `number` field made a float and every whole float in
    an `integer` field an int, in place, so `10` and `10.0` are one value everywhere
    downstream (params, Parquet, logs, slices)."""
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rpartition("/")[2]]
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        value = _as_schema_numbers(value, branch, root)
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        extra = schema.get("additionalProperties")
        for key in value:
            sub = schema["properties"].get(key, extra)
            if isinstance(sub, dict):
                value[key] = _as_schema_numbers(value[key], sub, root)
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key in value:
            value[key] = _as_schema_numbers(value[key], schema["additionalProperties"], root)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value[:] = [_as_schema_numbers(item, schema["items"], root) for item in value]
    elif isinstance(value, int) and not isinstance(value, bool) and "integer" not in types:
        return float(value) if "number" in types else value
    elif isinstance(value, float) and value.is_integer() and "number" not in types:
        # JSON Schema counts 2048.0 as an integer; the code and the params need 2048
        return int(value) if "integer" in types else value
    return value


def _whole_pattern(validator, pattern, instance, schema):
    """`pattern`, with a final `$` meaning the end of the text: Python's `$` also matches
    before a last newline, so `run: "a\\n"` (what YAML's `run: |` gives) would pass and then
    split a job's shell command in two."""
    if not validator.is_type(instance, "string"):
        return
    if re.search(pattern, instance) is None or (pattern.endswith("$") and instance.endswith("\n")):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _with_defaults(validator_class):
    """A validator that also fills `default:` values of object properties, and whose
    patterns anchored with `$` end at the text's end (`_whole_pattern`)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(
        validator_class, {"properties": set_defaults, "pattern": _whole_pattern}
    )


def needs_corpus(config: dict) -> bool:
    """Training SAEs and mining activations read the corpus."""
    return config["activations"]["source"] == "mine" or any(
        layer_settings(config, layer)["sae"].get("source") == "train"
        for layer in configured_layers(config)
    )
