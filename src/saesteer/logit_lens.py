"""Logit lens of SAE features: P_i = softmax(lm_head(final_norm(W_dec[i]))), with the
model's final soft-cap where it has one (Gemma-2), as its own forward applies it."""

from __future__ import annotations

import polars as pl
import torch
from tqdm import tqdm

from saesteer.models import final_logits
from saesteer.tokenizer_files import token_texts

LOGIT_LENS_SCHEMA = {
    "layer": pl.Int32,
    "feature": pl.Int64,
    "rank": pl.Int32,
    "token_id": pl.Int64,
    "token": pl.Utf8,
    "prob": pl.Float64,
    "logit": pl.Float64,  # the raw logit (after any final soft-cap); null in older files
}


@torch.no_grad()
def logit_lens_topk(
    model,
    w_dec: torch.Tensor,
    features: list[int],
    top_k: int = 20,
    batch_size: int = 256,
    lowest: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k token ids, probabilities and raw logits of each feature's decoder row, batched.

    Returns (ids, probs, logits), each [len(features), top_k], by descending probability;
    with `lowest`, the k tokens of lowest logit instead, lowest first (the tokens the
    feature pushes down: Neuronpedia's negative logits)."""
    param = model.get_output_embeddings().weight
    index = torch.as_tensor(features, dtype=torch.long, device=w_dec.device)
    all_ids, all_probs, all_logits = [], [], []
    for start in tqdm(range(0, len(features), batch_size), desc="logit lens", unit="batch"):
        rows = w_dec[index[start : start + batch_size]].to(param.device, param.dtype)
        # The decoder row is read as if it were a final hidden state (norm, then unembed).
        logits = final_logits(model, rows).float()
        probs = torch.softmax(logits, dim=-1)
        if lowest:
            chosen = logits.topk(top_k, dim=-1, largest=False).indices
            all_probs.append(probs.gather(-1, chosen).cpu())
        else:
            top = probs.topk(top_k, dim=-1)
            chosen = top.indices
            all_probs.append(top.values.cpu())
        all_ids.append(chosen.cpu())
        all_logits.append(logits.gather(-1, chosen).cpu())
    return torch.cat(all_ids), torch.cat(all_probs), torch.cat(all_logits)


def logit_lens_frame(
    layer: int,
    features: list[int],
    ids: torch.Tensor,
    probs: torch.Tensor,
    tokenizer,
    logits: torch.Tensor | None = None,
) -> pl.DataFrame:
    n, k = ids.shape
    flat_ids = ids.reshape(-1).tolist()
    tokens = token_texts(tokenizer, flat_ids)
    return pl.DataFrame(
        {
            "layer": [layer] * (n * k),
            "feature": [f for f in features for _ in range(k)],
            "rank": list(range(k)) * n,
            "token_id": flat_ids,
            "token": tokens,
            "prob": probs.reshape(-1).tolist(),
            "logit": [None] * (n * k) if logits is None else logits.reshape(-1).tolist(),
        },
        schema=LOGIT_LENS_SCHEMA,
    )
