"""Shared fixtures: a tiny random Llama, Gemma-2 and Gemma-3 with a word-level tokenizer,
and SAE-Lens SAEs."""

from __future__ import annotations

import copy
import inspect
import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers import (
    REPO,
    TABLE,
    TINY_ARCHITECTURES,
    TINY_LAYERS,
    TINY_SIZES,
    TRAINED,
    TRAINED_TARGETS,
    concept_config,
    make_tiny_config,
    run_snakemake,
    save_sae,
    word_tokenizer,
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny_llama")
    config = LlamaConfig(**TINY_SIZES, tie_word_embeddings=False)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    word_tokenizer().save_pretrained(path)
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
    word_tokenizer().save_pretrained(path)
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
    word_tokenizer().save_pretrained(path)
    return path


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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_model_dir, tiny_saes, tiny_corpus):
    """One finished tiny run per session; tests get a copy (outputs, mtimes, metadata)."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    config = make_tiny_config(tiny_model_dir, tiny_saes, tiny_corpus)
    result = run_snakemake(workdir, config)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


@pytest.fixture(scope="session")
def concept_run(tmp_path_factory, tiny_model_dir, tiny_saes, tiny_corpus):
    """One tiny run with concept steering at layer 2 and the proxy judge, per session,
    up to the concept table."""
    workdir = tmp_path_factory.mktemp("concept_run")
    config = concept_config(make_tiny_config(tiny_model_dir, tiny_saes, tiny_corpus))
    result = run_snakemake(workdir, config, TABLE)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_model_dir, tiny_saes, tiny_corpus):
    """One tiny run that trains its SAEs (layers 1 and 3), per session."""
    workdir = tmp_path_factory.mktemp("trained_run")
    config = {**make_tiny_config(tiny_model_dir, tiny_saes, tiny_corpus), **copy.deepcopy(TRAINED)}
    result = run_snakemake(workdir, config, *TRAINED_TARGETS)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


@pytest.fixture
def trained_run_copy(tmp_path, trained_run):
    """A copy of the trained run (symlinks, mtimes and Snakemake's records kept)."""
    workdir, config = trained_run
    shutil.copytree(workdir, tmp_path, symlinks=True, dirs_exist_ok=True)
    return tmp_path, copy.deepcopy(config)


@pytest.fixture
def finished_run(tmp_path, tiny_run):
    workdir, config = tiny_run
    shutil.copytree(workdir, tmp_path, symlinks=True, dirs_exist_ok=True)
    return tmp_path, copy.deepcopy(config)


@pytest.fixture(scope="session")
def gemma3_tokenizer():
    """Gemma-3's real tokenizer (SentencePiece), converted once from the embedded
    Gemma-3-270M GGUF to resources/tokenizers/."""
    from transformers import AutoTokenizer

    from saesteer.io import atomic_dir, exclusive
    from saesteer.models import EMBEDDED

    target = REPO / "resources" / "tokenizers" / "gemma-3-270m"
    with exclusive(target.with_name(".gemma-3-270m.lock")):  # pytest-xdist workers
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


# What in a test's source means it runs Snakemake (itself or through a fixture).
SNAKEMAKE_USES = (
    "run_snakemake(",
    "_in_clone(",
    "finished_run",
    "tiny_run",
    "concept_run",
    "trained_run",
)


def pytest_collection_modifyitems(items):
    """A test that runs Snakemake (or drives a browser) carries its tier's marker, so
    `pytest -m "not workflow"` stays the fast loop."""
    for item in items:
        source = inspect.getsource(item.function) if hasattr(item, "function") else ""
        runs = any(word in source for word in SNAKEMAKE_USES)
        if runs and not item.get_closest_marker("workflow"):
            raise pytest.UsageError(f"{item.nodeid} runs Snakemake: mark it workflow")
