"""Shared fixtures: a tiny random Llama, Gemma-2 and Gemma-3 with a word-level tokenizer,
and SAE-Lens SAEs."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY_LAYERS, TINY_D_MODEL, TINY_VOCAB = 4, 64, 128
# Sizes the tiny Llama and the tiny Gemma-2 share.
TINY_SIZES = {
    "vocab_size": TINY_VOCAB,
    "hidden_size": TINY_D_MODEL,
    "intermediate_size": 128,
    "num_hidden_layers": TINY_LAYERS,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
}


def _word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(TINY_VOCAB - 3)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    # A chat template, so concept steering can treat it as an instruction-tuned model.
    tokenizer.chat_template = (
        "{% for m in messages %}<s> w5 {{ m['content'] }} </s> {% endfor %}"
        "{% if add_generation_prompt %}w6 {% endif %}"
    )
    return tokenizer


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny_llama")
    config = LlamaConfig(**TINY_SIZES, tie_word_embeddings=False)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    _word_tokenizer().save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_gemma2_dir(tmp_path_factory) -> Path:
    """A tiny random Gemma-2 as the paper's models are built: a sliding window (3) shorter
    than the prompts, scaled embeddings, and soft-capped attention and final logits (caps
    low enough that dropping one changes the numbers)."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    path = tmp_path_factory.mktemp("tiny_gemma2")
    config = Gemma2Config(
        **TINY_SIZES,
        head_dim=16,
        sliding_window=3,
        final_logit_softcapping=2.0,
        attn_logit_softcapping=5.0,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(config)
    with torch.no_grad():  # random init gives tiny logits, which no cap would touch
        model.get_output_embeddings().weight.mul_(8.0)
    model.save_pretrained(path)
    _word_tokenizer().save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_gemma3_dir(tmp_path_factory) -> Path:
    """A tiny random Gemma-3 as the embedded Gemma-3-270M is built: sliding-window layers
    (window 3) between full-attention ones, separate local and global RoPE bases, q/k
    norms, scaled embeddings, no final soft-cap."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    path = tmp_path_factory.mktemp("tiny_gemma3")
    config = Gemma3TextConfig(
        **TINY_SIZES,
        head_dim=16,
        sliding_window=3,
        layer_types=["sliding_attention", "full_attention"] * (TINY_LAYERS // 2),
        final_logit_softcapping=None,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config)
    with torch.no_grad():  # random init gives near-uniform logits: make them peaked
        model.get_output_embeddings().weight.mul_(8.0)
    model.save_pretrained(path)
    _word_tokenizer().save_pretrained(path)
    return path


TINY_ARCHITECTURES = ("llama", "gemma2", "gemma3")


@pytest.fixture(scope="session", params=TINY_ARCHITECTURES)
def any_tiny_model(request, tiny_model_dir, tiny_gemma2_dir, tiny_gemma3_dir):
    """The tiny Llama, Gemma-2 and Gemma-3 (model, tokenizer), each loaded once."""
    from saesteer.models import load_model

    path = {"llama": tiny_model_dir, "gemma2": tiny_gemma2_dir, "gemma3": tiny_gemma3_dir}
    return load_model(path[request.param], device="cpu")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    """The tiny model and tokenizer, loaded once (hooks and block swaps undo themselves)."""
    from saesteer.models import load_model

    return load_model(tiny_model_dir, device="cpu")


@pytest.fixture(scope="session")
def embedded_model():
    """The embedded SmolLM2-135M-Instruct (converted once under resources/), loaded once."""
    from saesteer.models import EmbeddedSource, load_model

    return load_model(
        EmbeddedSource("smollm2-135m-instruct").resolve(REPO / "resources"), device="cpu"
    )


def save_sae(path: Path, layer: int, d_in: int = TINY_D_MODEL, d_sae: int = 256, seed: int = 0):
    """A real SAE-Lens SAE with random weights, saved with SAE-Lens."""
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(seed)
    cfg = StandardSAEConfig(
        d_in=d_in, d_sae=d_sae, metadata=SAEMetadata(hook_name=f"model.layers.{layer}")
    )
    sae = StandardSAE(cfg)
    sae.save_model(path)
    return sae


@pytest.fixture(scope="session")
def tiny_saes(tmp_path_factory) -> Path:
    """SAE-Lens directories `layer_<L>` for every layer of the tiny model."""
    root = tmp_path_factory.mktemp("tiny_saes")
    for layer in range(TINY_LAYERS):
        save_sae(root / f"layer_{layer}", layer, seed=layer)
    return root


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A text file in the tiny model's words (Zipf-distributed), paragraphs of 200 words."""
    path = tmp_path_factory.mktemp("tiny_corpus") / "corpus.txt"
    generator = torch.Generator().manual_seed(0)
    words = torch.multinomial(1 / torch.arange(1, 101).float(), 8000, True, generator=generator)
    text = "\n\n".join(" ".join(f"w{w}" for w in words[i : i + 200]) for i in range(0, 8000, 200))
    path.write_text(text)
    return path


@pytest.fixture
def tiny_config(tiny_model_dir, tiny_saes, tiny_corpus) -> dict:
    """A valid run config over the tiny model (a fresh dict per test, safe to mutate)."""
    return make_tiny_config(tiny_model_dir, tiny_saes, tiny_corpus)


def make_tiny_config(tiny_model_dir: Path, tiny_saes: Path, tiny_corpus: Path) -> dict:
    return {
        "run": "tiny",
        "model": {"source": f"local:{tiny_model_dir}", "device": "cpu"},
        "sae": {"source": "local", "path": f"{tiny_saes}/layer_{{layer}}"},
        "corpus": {"sources": [], "files": [str(tiny_corpus)], "context_size": 32},
        "features": {"random": 8, "seed": 1},
        "logit_lens": {"top_k": 20},
        "output_score": {"top_k": 5, "robustness_prompts": ["w1 w2", "w3"]},
        "activations": {"n_examples": 20, "mine": {"context_before": 4, "context_after": 2}},
        "input_score": {"top_k": 5, "min_examples": 5},
        "generation": {
            "factors": [0.0, 2.0, 8.0],
            "prefixes": ["w1 w2", "w3", "w4"],
            "n_prefixes": 2,
            "max_features": 6,
            "max_new_tokens": 4,
        },
        "layers": {1: {}, 2: {"features": [0, 3, 7, 255]}},
    }


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_model_dir, tiny_saes, tiny_corpus):
    """One finished tiny run per session; tests get a copy (outputs, mtimes, metadata)."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    config = make_tiny_config(tiny_model_dir, tiny_saes, tiny_corpus)
    result = run_snakemake(workdir, config)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


@pytest.fixture
def finished_run(tmp_path, tiny_run):
    workdir, config = tiny_run
    shutil.copytree(workdir, tmp_path, symlinks=True, dirs_exist_ok=True)
    return tmp_path, copy.deepcopy(config)


def run_snakemake(
    workdir: Path, config: dict, *args: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the real workflow in `workdir` on `config`, with this interpreter's tools first
    on PATH; `env` adds or replaces variables."""
    config_file = workdir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {**os.environ, **(env or {})}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    cmd = [
        "snakemake",
        "--snakefile",
        str(REPO / "workflow" / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config_file),
        "--cores",
        "2",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)


def reference_topk(model, direction: torch.Tensor, k: int):
    """Independent path: make `direction` the last block's output and run the model itself."""
    from saesteer.models import decoder_layers

    last = decoder_layers(model)[-1]

    def replace(module, inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = direction.expand_as(hidden).clone()
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = last.register_forward_hook(replace)
    try:
        logits = model(torch.tensor([[1]])).logits[0, -1]
    finally:
        handle.remove()
    return torch.softmax(logits, -1).topk(k)


def random_sae(kind: str, layer: int = 1, d_in: int = TINY_D_MODEL, d_sae: int = 256, seed=0):
    """An SAE-Lens SAE of architecture `kind` with random weights and non-zero biases.

    `topk` rescales by decoder norm, so its effective decoder rows are not W_dec's rows;
    `jumprelu` has thresholds that switch off part of the latents."""
    from sae_lens import (
        JumpReLUSAE,
        JumpReLUSAEConfig,
        StandardSAE,
        StandardSAEConfig,
        TopKSAE,
        TopKSAEConfig,
    )
    from sae_lens.saes.sae import SAEMetadata

    metadata = SAEMetadata(hook_name=f"model.layers.{layer}")
    common = {"d_in": d_in, "d_sae": d_sae, "metadata": metadata}
    torch.manual_seed(seed)
    sae = {
        "standard": lambda: StandardSAE(StandardSAEConfig(**common)),
        "topk": lambda: TopKSAE(TopKSAEConfig(**common, k=16, rescale_acts_by_decoder_norm=True)),
        "jumprelu": lambda: JumpReLUSAE(JumpReLUSAEConfig(**common)),
    }[kind]()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.W_dec.mul_(1 + torch.rand(d_sae, 1, generator=generator))
        sae.b_dec.copy_(0.1 * torch.randn(d_in, generator=generator))
        sae.b_enc.copy_(0.05 * torch.randn(d_sae, generator=generator))
        if kind == "jumprelu":
            sae.threshold.copy_(0.05 * torch.rand(d_sae, generator=generator))
    return sae.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def gemma3_tokenizer():
    """Gemma-3's real tokenizer (SentencePiece), converted once from the embedded
    Gemma-3-270M GGUF to resources/tokenizers/."""
    from transformers import AutoTokenizer

    from saesteer.io import atomic_dir
    from saesteer.models import EMBEDDED

    target = REPO / "resources" / "tokenizers" / "gemma-3-270m"
    if not (target / "tokenizer_config.json").is_file():
        gguf = EMBEDDED["gemma-3-270m"].gguf(REPO / "resources" / "downloads")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        with atomic_dir(target) as tmp:
            tokenizer.save_pretrained(tmp)
    return AutoTokenizer.from_pretrained(target)


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """SmolLM2's byte-level BPE tokenizer, from the embedded model (converted once)."""
    from transformers import AutoTokenizer

    from saesteer.models import EmbeddedSource

    return AutoTokenizer.from_pretrained(
        EmbeddedSource("smollm2-135m-instruct").resolve(REPO / "resources")
    )
