"""Train one SAE on the residual stream at the output of block L, with SAE-Lens."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """The `sae.train` config block; defaults suit SmolLM2-135M on 2 CPU cores."""

    architecture: str = "topk"  # topk | standard
    d_sae: int = 4096
    k: int = 32  # topk only
    l1_coefficient: float = 5.0  # standard only
    training_tokens: int = 200_000
    batch_size_tokens: int = 1024
    lr: float = 5e-4
    seed: int = 0

    @classmethod
    def from_config(cls, train: dict | None) -> TrainSettings:
        return cls(**(train or {}))


def _training_sae_config(settings: TrainSettings, d_in: int):
    from sae_lens import StandardTrainingSAEConfig, TopKTrainingSAEConfig

    # Raw residuals have large, layer-dependent norms: SAE-Lens scales them to an expected
    # norm of sqrt(d_in) while training and folds the scale into the saved weights.
    common = {
        "d_in": d_in,
        "d_sae": settings.d_sae,
        "normalize_activations": "expected_average_only_in",
    }
    if settings.architecture == "topk":
        return TopKTrainingSAEConfig(k=settings.k, **common)
    if settings.architecture == "standard":
        return StandardTrainingSAEConfig(l1_coefficient=settings.l1_coefficient, **common)
    raise ValueError(f"sae.train.architecture: unknown {settings.architecture!r}")


def train_sae(
    model_path: str | Path,
    layer: int,
    chunks,
    settings: TrainSettings,
    out: str | Path,
    device: str = "cpu",
) -> Path:
    """Train on packed token chunks `[n, context_size]` (each starting with BOS, see
    `corpus.pack_documents`) and save an SAE-Lens directory at `out`, atomically."""
    from datasets import Dataset
    from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner, LoggingConfig
    from transformers import AutoConfig

    d_in = AutoConfig.from_pretrained(model_path).get_text_config().hidden_size
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    n_prompts = max(1, settings.batch_size_tokens // chunks.shape[1])
    n_steps = max(1, settings.training_tokens // settings.batch_size_tokens)
    cfg = LanguageModelSAERunnerConfig(
        sae=_training_sae_config(settings, d_in),
        model_name=str(model_path),
        model_class_name="AutoModelForCausalLM",
        hook_name=f"model.layers.{layer}",
        dataset_path="",
        is_dataset_tokenized=True,
        streaming=False,
        context_size=chunks.shape[1],
        prepend_bos=True,
        # BOS and other special tokens carry attention-sink norms far above the rest.
        exclude_special_tokens=True,
        training_tokens=settings.training_tokens,
        train_batch_size_tokens=settings.batch_size_tokens,
        store_batch_size_prompts=n_prompts,
        n_batches_in_buffer=8,
        n_batches_for_norm_estimate=20,
        lr=settings.lr,
        lr_warm_up_steps=max(1, n_steps // 20),
        # A latent silent for a tenth of the run counts as dead, so TopK's auxiliary loss
        # revives it while training is still short (SAE-Lens' default window is 1000 steps).
        dead_feature_window=max(10, n_steps // 10),
        feature_sampling_window=n_steps,
        device=device,
        seed=settings.seed,
        logger=LoggingConfig(log_to_wandb=False),
        output_path=str(tmp),
        checkpoint_path=str(tmp / "checkpoints"),
        n_checkpoints=0,
        verbose=True,
    )
    log.info("training layer %d: %s", layer, asdict(settings))
    dataset = Dataset.from_dict({"input_ids": [list(map(int, row)) for row in chunks]})
    try:
        LanguageModelSAETrainingRunner(cfg, override_dataset=dataset).run()
        shutil.rmtree(tmp / "checkpoints", ignore_errors=True)
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
