"""Train one SAE on the residual stream at the output of block L, with SAE-Lens.

The first `activation_tokens` residuals of the run's cache (`saesteer.residuals`, one model
pass for all layers) are read into memory; SAE-Lens' trainer then takes `training_tokens`
samples from them in shuffled epochs. On a CPU the model forward is the cost, so several
epochs over a cached set buy far better SAEs than one pass over a stream of the same cost.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from saesteer.errors import ConfigError
from saesteer.hooks import non_sink_positions
from saesteer.io import atomic_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """The `sae.train` config block (defaults in the schema)."""

    SECTIONS: ClassVar = ("sae.train",)
    architecture: str  # topk | batchtopk | standard
    d_sae: int
    k: int  # topk and batchtopk
    aux_loss_coefficient: float  # topk and batchtopk: trains dead latents
    init: str  # sae-lens (its own random init) | data (decoder rows at training residuals)
    l1_coefficient: float  # standard only
    activation_tokens: int  # corpus tokens run through the model
    training_tokens: int  # SAE training samples (epochs over the cache)
    batch_size_tokens: int
    lr: float
    seed: int


def training_residuals(
    residuals: torch.Tensor, chunks: np.ndarray, n_tokens: int, special_ids: list[int]
) -> torch.Tensor:
    """Up to `n_tokens` float32 residuals from the cached block outputs [n, ctx, d] of
    `chunks` [n, ctx], without special tokens and attention sinks (see
    `hooks.non_sink_positions`; its median is taken over 16 chunks at a time). Reads the
    first ceil(n_tokens / (ctx - 1)) chunks: each loses its BOS."""
    kept = []
    n_chunks = min(len(residuals), math.ceil(n_tokens / (chunks.shape[1] - 1)))
    for start in range(0, n_chunks, 16):
        stop = min(start + 16, n_chunks)
        tokens = torch.from_numpy(chunks[start:stop])
        hidden = residuals[start:stop].float()
        kept.append(hidden[non_sink_positions(tokens, hidden, special_ids)])
    return torch.cat(kept)[:n_tokens]


def shuffled_batches(acts: torch.Tensor, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless epochs over `acts`, reshuffled every epoch."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(acts), generator=generator)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield acts[order[start : start + batch_size]]


def _training_sae(settings: TrainSettings, d_in: int, layer: int):
    from sae_lens import (
        BatchTopKTrainingSAE,
        BatchTopKTrainingSAEConfig,
        StandardTrainingSAE,
        StandardTrainingSAEConfig,
        TopKTrainingSAE,
        TopKTrainingSAEConfig,
    )
    from sae_lens.saes.sae import SAEMetadata

    common = {
        "d_in": d_in,
        "d_sae": settings.d_sae,
        # Residual norms grow with depth: SAE-Lens scales inputs to an expected norm of
        # sqrt(d_in) while training and folds the scale into the saved weights.
        "normalize_activations": "expected_average_only_in",
        "metadata": SAEMetadata(hook_name=f"model.layers.{layer}", prepend_bos=True),
    }
    sparse = {"k": settings.k, "aux_loss_coefficient": settings.aux_loss_coefficient}
    if settings.architecture == "topk":
        return TopKTrainingSAE(TopKTrainingSAEConfig(**sparse, **common))
    if settings.architecture == "batchtopk":
        return BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(**sparse, **common))
    if settings.architecture == "standard":
        config = StandardTrainingSAEConfig(l1_coefficient=settings.l1_coefficient, **common)
        return StandardTrainingSAE(config)
    raise ConfigError(f"sae.train.architecture: unknown {settings.architecture!r}")


@torch.no_grad()
def init_from_data(sae, acts: torch.Tensor, seed: int) -> torch.Tensor:
    """Start every latent at a training residual: decoder row i points from b_dec to a
    distinct residual drawn at random (its norm kept), and encoder column i is that unit
    direction. A random direction at an early block, where residuals cluster around the
    token embeddings, is often never among any token's top k and dies before the
    auxiliary loss can reach it; a latent started on a token fires on it from step one.
    Returns the drawn rows of `acts`."""
    if len(acts) < sae.cfg.d_sae:
        raise ConfigError(
            f"sae.train.init data: {len(acts)} training residuals for {sae.cfg.d_sae} latents "
            "(raise sae.train.activation_tokens)"
        )
    generator = torch.Generator().manual_seed(seed)
    drawn = torch.randperm(len(acts), generator=generator)[: sae.cfg.d_sae]
    directions = acts[drawn].to(sae.W_dec.dtype) - sae.b_dec
    directions = directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-8)
    sae.W_dec.copy_(directions * sae.W_dec.norm(dim=1, keepdim=True))
    sae.W_enc.copy_(directions.T)
    return drawn


def fit_sae(acts: torch.Tensor, layer: int, settings: TrainSettings, device: str = "cpu"):
    """Train an SAE-Lens training SAE on cached activations with SAE-Lens' trainer."""
    from sae_lens import LoggingConfig
    from sae_lens.training.sae_trainer import SAETrainer, SAETrainerConfig

    torch.manual_seed(settings.seed)
    sae = _training_sae(settings, acts.shape[1], layer)
    # Late-layer residuals share a large mean direction; starting b_dec there (in the
    # trainer's scaled units) lets the latents spend their capacity on the variation.
    scale = acts.shape[1] ** 0.5 / acts.norm(dim=1).mean()
    with torch.no_grad():
        sae.b_dec.copy_(acts.mean(0) * scale)
    if settings.init == "data":
        init_from_data(sae, acts * scale, settings.seed)
    n_steps = max(1, settings.training_tokens // settings.batch_size_tokens)
    cfg = SAETrainerConfig(
        total_training_samples=settings.training_tokens,
        train_batch_size_samples=settings.batch_size_tokens,
        lr=settings.lr,
        lr_end=settings.lr / 10,
        lr_scheduler_name="cosineannealing",
        lr_warm_up_steps=max(1, n_steps // 20),
        lr_decay_steps=n_steps - max(1, n_steps // 20),
        device=device,
        # A latent silent for a tenth of the run is dead: TopK's auxiliary loss revives it.
        dead_feature_window=max(10, n_steps // 10),
        feature_sampling_window=n_steps,
        logger=LoggingConfig(log_to_wandb=False),
        n_batches_for_norm_estimate=min(100, max(1, len(acts) // settings.batch_size_tokens)),
    )
    batches = (
        b.to(device) for b in shuffled_batches(acts, settings.batch_size_tokens, settings.seed)
    )
    return SAETrainer(cfg=cfg, sae=sae, data_provider=batches).fit()


def is_trained_sae(path: str | Path) -> bool:
    path = Path(path)
    return (path / "cfg.json").is_file() and (path / "sae_weights.safetensors").is_file()


def train_sae(
    residuals: torch.Tensor,
    chunks: np.ndarray,
    special_ids: list[int],
    layer: int,
    settings: TrainSettings,
    out: str | Path,
    device: str = "cpu",
) -> Path:
    """Train on block `layer`'s cached outputs `residuals` [n, ctx, d] of the packed token
    chunks `chunks` [n, ctx] (BOS first, see `corpus.pack_documents`) and save an SAE-Lens
    directory at `out`, atomically.

    An SAE already at `out` is kept: the directory's name hashes everything the training
    reads (`config.trained_sae_dir`), so it is this SAE, and a rerun that Snakemake asks
    for (new code, a forced rule) must not spend hours replacing it. Delete the directory
    to retrain."""
    if is_trained_sae(out):
        log.info(
            "layer %d: keeping the SAE already trained at %s (delete it to retrain)", layer, out
        )
        return Path(out)
    log.info("training layer %d: %s", layer, asdict(settings))
    acts = training_residuals(residuals, chunks, settings.activation_tokens, special_ids)
    log.info("layer %d: %d residuals, mean norm %.1f", layer, len(acts), acts.norm(dim=1).mean())
    sae = fit_sae(acts, layer, settings, device)
    with atomic_dir(out) as tmp:
        sae.save_inference_model(tmp)
        date_by_weights(tmp)
    return Path(out)


def date_by_weights(folder: str | Path) -> None:
    """Make Snakemake date a trained SAE's directory by its weights file: it reads a
    directory output's mtime from `.snakemake_timestamp` inside it (following a link), and
    only touches the link itself after the job. Weights overwritten in place then rerun the
    layer, where the directory's own timestamp file would not have moved."""
    stamp = Path(folder) / ".snakemake_timestamp"
    stamp.unlink(missing_ok=True)
    stamp.symlink_to("sae_weights.safetensors")
