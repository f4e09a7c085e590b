"""SAE resolution per layer (a registry of sources) and loading."""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from saesteer.errors import ConfigError, SaeError
from saesteer.io import portable_path, read_json, sha256_file
from saesteer.models import load_model, load_tokenizer, resolve_device

log = logging.getLogger(__name__)

# Names of the residual stream after block L: SAE-Lens / TransformerLens, and the Hugging
# Face module whose output the hooks here read.
_RESID_POST = re.compile(r"^(?:blocks\.(\d+)\.hook_resid_post|(?:model\.)?layers\.(\d+))$")
_OTHER_POINTS = re.compile(r"hook_resid_(pre|mid)|attn|mlp|hook_z")


def check_hook(hook_name: str, layer: int) -> None:
    """The SAE must read what the steering hook edits: the output of block `layer`."""
    match = _RESID_POST.match(hook_name)
    if match:
        block = int(match.group(1) or match.group(2))
        if block != layer:
            raise ConfigError(
                f"layer {layer}: the SAE ({hook_name!r}) reads the output of block {block}"
            )
    elif _OTHER_POINTS.search(hook_name):
        raise ConfigError(
            f"layer {layer}: SAE hook {hook_name!r} is not the residual stream after block "
            f"{layer} (blocks.{layer}.hook_resid_post)"
        )
    else:
        log.warning("layer %d: unrecognized SAE hook name %r, assumed right", layer, hook_name)


@functools.cache
def saelens_directory() -> dict:
    """SAE-Lens' table of pretrained releases, read as YAML so config checks stay fast."""
    spec = importlib.util.find_spec("sae_lens")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("sae.source: saelens needs the sae-lens package installed")
    table = Path(spec.submodule_search_locations[0]) / "pretrained_saes.yaml"
    with table.open() as f:
        return yaml.safe_load(f)


def _describe(hook_name: str, d_in: int, d_sae: int, architecture: str, **fields) -> dict:
    check_hook(hook_name, fields["layer"])
    return {
        **fields,
        "hook_name": hook_name,
        "d_in": int(d_in),
        "d_sae": int(d_sae),
        "architecture": architecture,
    }


def _describe_loaded(sae, **fields) -> dict:
    cfg = sae.cfg
    return _describe(cfg.metadata.hook_name, cfg.d_in, cfg.d_sae, cfg.architecture(), **fields)


def _saelens_v6_cfg(path: Path) -> dict | None:
    """The fields a descriptor needs, from an SAE-Lens 6 `cfg.json`, or None for other
    formats (those are loaded through SAE-Lens, which converts them)."""
    try:
        cfg = json.loads((path / "cfg.json").read_text())
        fields = {
            "hook_name": cfg["metadata"]["hook_name"],
            "d_in": int(cfg["d_in"]),
            "d_sae": int(cfg["d_sae"]),
            "architecture": str(cfg["architecture"]),
        }
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return fields if (path / "sae_weights.safetensors").is_file() else None


WEIGHTS_FILE = "sae_weights.safetensors"


def weights_stamp(path: str | Path) -> dict | None:
    """Size and mtime of an SAE directory's weights: cheap enough for every workflow parse,
    so a replaced file is noticed. None when there is no such file."""
    weights = Path(path) / WEIGHTS_FILE
    if not weights.is_file():
        return None
    stat = weights.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def weights_identity(path: str | Path) -> dict:
    """The stamp plus the file's SHA-256, recorded in sae.json as the SAE's identity."""
    weights = Path(path) / WEIGHTS_FILE
    stamp = weights_stamp(path)
    if stamp is None:
        raise SaeError(
            f"{weights}: missing; an SAE-Lens directory holds cfg.json and {WEIGHTS_FILE}"
        )
    return {**stamp, "sha256": sha256_file(weights)}


def retrain(folder: str | Path) -> str:
    """How to retrain a trained SAE whose directory lost its weights: remove what is left
    (protected, so made writable first), then force its layer's sae.json (beside it), whose
    input the directory is; its name hashes its settings, so it trains into the same one.
    (A plain `snakemake` would not: a missing intermediate is not remade while what it fed
    is up to date.)"""
    described = Path(folder).parent / "sae.json"
    return (
        f"retrain it: `chmod -R u+w {folder} && rm -r {folder}`, then "
        f"`snakemake --forcerun {described}`"
    )


def check_weights(descriptor: dict) -> None:
    """The weights must still be those sae.json recorded, by SHA-256 (size and mtime can
    be forged or kept by a copy: 0.01 s for the demo's 10 MB SAEs): a job never steers
    with an SAE other than the one its inputs were computed from. The error says the
    exact command that recovers."""
    recorded = descriptor.get("weights")
    if not recorded:
        return
    layer, path = descriptor["layer"], Path(descriptor["path"])
    weights = path / WEIGHTS_FILE
    trained = descriptor["source"] == "train"
    # a trained SAE's sae.json sits beside its directory: results/<run>/layers/<L>/
    describe_again = (
        f"snakemake --forcerun {path.parent / 'sae.json'}"
        if trained
        else f"snakemake --forcerun sae (every layer's; or --forcerun "
        f"results/<run>/layers/{layer}/sae.json for this one)"
    )
    if not weights.is_file():
        how = (
            retrain(path)
            if trained
            else f"restore it, then `{describe_again}` if it is another SAE"
        )
        raise SaeError(f"{weights}: missing (layer {layer}'s SAE); {how}")
    now = weights_stamp(path)
    same = (
        sha256_file(weights) == recorded["sha256"]
        if "sha256" in recorded  # sae.json files made before it record size and mtime
        else now["mtime_ns"] == recorded["mtime_ns"]
    )
    if now["size"] != recorded["size"] or not same:
        raise SaeError(
            f"{weights}: not the SAE sae.json describes (size {recorded['size']} -> "
            f"{now['size']}, SHA-256 changed); `{describe_again}` re-describes it and "
            "reruns the layer's jobs"
        )


@dataclass(frozen=True)
class SaeLensRelease:
    """A pretrained SAE from SAE-Lens' registry, e.g. GemmaScope (downloads on first use)."""

    def check(self, sae: dict, layer: int) -> int | None:
        for field in ("release", "id"):
            if field not in sae:
                raise ConfigError(f"sae.{field}: required for source saelens (layer {layer})")
        directory = saelens_directory()
        if sae["release"] not in directory:
            raise ConfigError(f"sae.release: unknown SAE-Lens release {sae['release']!r}")
        ids = {entry["id"] for entry in directory[sae["release"]]["saes"]}
        if sae["id"] not in ids:
            raise ConfigError(
                f"sae.id: {sae['id']!r} (layer {layer}) is not in release {sae['release']!r}"
            )
        return sae.get("d_sae")

    def describe(self, sae: dict, layer: int) -> dict:
        loaded = self.load({"release": sae["release"], "sae_id": sae["id"]})
        return _describe_loaded(
            loaded, source="saelens", layer=layer, release=sae["release"], sae_id=sae["id"]
        )

    def load(self, descriptor: dict, device: str = "cpu"):
        from sae_lens import SAE

        return SAE.from_pretrained(descriptor["release"], descriptor["sae_id"], device=device)


@dataclass(frozen=True)
class LocalDirectory:
    """An SAE saved by SAE-Lens (`cfg.json` + `sae_weights.safetensors`)."""

    def check(self, sae: dict, layer: int) -> int:
        if "path" not in sae:
            raise ConfigError(f"sae.path: required for source local (layer {layer})")
        cfg_file = Path(sae["path"]) / "cfg.json"
        if not cfg_file.is_file():
            raise ConfigError(f"sae.path: no SAE-Lens cfg.json in {sae['path']} (layer {layer})")
        if not (Path(sae["path"]) / WEIGHTS_FILE).is_file():
            raise ConfigError(f"sae.path: no {WEIGHTS_FILE} in {sae['path']} (layer {layer})")
        try:
            return int(json.loads(cfg_file.read_text())["d_sae"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"sae.path: unreadable SAE-Lens config {cfg_file}: {e}") from e

    def describe(self, sae: dict, layer: int) -> dict:
        # Reading cfg.json spares this metadata-only job SAE-Lens' ~10 s import; the jobs
        # that use the SAE load it.
        path = Path(sae["path"])
        identity = {"weights": weights_identity(path)}
        cfg = _saelens_v6_cfg(path)
        where = portable_path(path)
        if cfg is None:
            loaded = self.load({"path": where})
            return _describe_loaded(loaded, source="local", layer=layer, path=where, **identity)
        return _describe(**cfg, source="local", layer=layer, path=where, **identity)

    def load(self, descriptor: dict, device: str = "cpu"):
        from sae_lens import SAE

        return SAE.load_from_disk(descriptor["path"], device=device)


@dataclass(frozen=True)
class Trained(LocalDirectory):
    """An SAE this workflow trains with SAE-Lens (rule `train_sae`), then reads like a local one."""

    def check(self, sae: dict, layer: int) -> int:
        return sae["train"]["d_sae"]  # layer_settings filled in the schema's defaults

    def describe(self, sae: dict, layer: int) -> dict:
        weights = Path(sae["path"]) / WEIGHTS_FILE
        if Path(sae["path"]).is_dir() and not weights.is_file():
            raise SaeError(
                f"{weights}: missing (layer {layer}'s trained SAE); {retrain(sae['path'])}"
            )
        return {**super().describe(sae, layer), "source": "train", "train": sae["train"]}


SAE_SOURCES = {"saelens": SaeLensRelease(), "local": LocalDirectory(), "train": Trained()}


def sae_source(name: str):
    if name not in SAE_SOURCES:
        raise ConfigError(f"sae.source: {name!r} is not available (known: {sorted(SAE_SOURCES)})")
    return SAE_SOURCES[name]


def load_sae(descriptor: dict, device: str = "cpu"):
    """Load the SAE a `sae.json` descriptor names, in eval mode, without gradients."""
    if descriptor["source"] in ("local", "train"):
        check_weights(descriptor)
    sae = sae_source(descriptor["source"]).load(descriptor, device=device)
    return sae.eval().requires_grad_(False)


def _check_fit(model_info: dict, descriptor: dict) -> None:
    if descriptor["d_in"] != model_info["d_model"]:
        raise ConfigError(
            f"layer {descriptor['layer']}: SAE d_in={descriptor['d_in']} does not match "
            f"model d_model={model_info['d_model']}"
        )


def load_layer(model_json: str | Path, sae_json: str | Path, device: str = "auto"):
    """The steering target of a run's model.json and a layer's sae.json: model, tokenizer,
    and the SAE on the model's device, after checking that they fit."""
    from saesteer.steering import SteeringTarget  # torch: not at the workflow's parse

    model_info, descriptor = read_json(model_json), read_json(sae_json)
    _check_fit(model_info, descriptor)
    model, tokenizer = load_model(model_info["path"], model_info["dtype"], device)
    sae = load_sae(descriptor, device=str(next(model.parameters()).device))
    return SteeringTarget(model, tokenizer, sae, descriptor["layer"])


def load_layer_sae(model_json: str | Path, sae_json: str | Path, device: str = "auto"):
    """(tokenizer, SAE, layer), for stages that read cached residuals instead of running
    the model."""
    model_info, descriptor = read_json(model_json), read_json(sae_json)
    _check_fit(model_info, descriptor)
    sae = load_sae(descriptor, device=resolve_device(device))
    return load_tokenizer(model_json), sae, descriptor["layer"]
