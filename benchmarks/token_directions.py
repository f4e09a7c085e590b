"""Where a model's residual stream still reads as its input token: the measurement behind
the demo's choice of model and layers.

For each block L, the token direction of token t is the mean residual after block L over
t's occurrences minus the mean over all tokens (special tokens and attention sinks left
out, as everywhere). The script reports the share of frequent tokens whose direction,
read through the logit lens (final norm, unembedding), has t among its top-k tokens. A
model whose early directions keep their token has input features an input score can see;
one where the share is ~0 from block 0 on (SmolLM2-135M) has none.

    python benchmarks/token_directions.py --chunks results/gemma3-demo/corpus/chunks.parquet \
        --model resources/models/gemma-3-270m
"""

from __future__ import annotations

import argparse
import json

import torch

from saesteer.corpus import read_chunks
from saesteer.hooks import non_sink_positions
from saesteer.models import decoder_layers, final_logits, load_model
from saesteer.residuals import collect_residuals


@torch.no_grad()
def token_direction_hits(model, hidden, tokens, special_ids, min_count, top_k):
    """Share of tokens (with >= min_count occurrences) whose centred mean direction has
    the token among its top_k logit-lens tokens; and how many tokens were measured."""
    keep = non_sink_positions(tokens, hidden, special_ids)
    flat, ids = hidden[keep].float(), tokens[keep]
    counts = torch.bincount(ids, minlength=int(ids.max()) + 1)
    frequent = torch.nonzero(counts >= min_count).flatten()
    sums = torch.zeros(len(counts), flat.shape[1]).index_add_(0, ids, flat)
    directions = sums[frequent] / counts[frequent, None] - flat.mean(0)
    hits = 0
    for part, token_ids in zip(directions.split(256), frequent.split(256), strict=True):
        top = final_logits(model, part).topk(top_k, dim=-1).indices
        hits += (top == token_ids[:, None]).any(-1).sum().item()
    return hits / len(frequent), len(frequent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", required=True, help="a run's corpus/chunks.parquet")
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--n-chunks", type=int, default=128)
    parser.add_argument("--min-count", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=20)
    args = parser.parse_args()
    model, tokenizer = load_model(args.model, "float32", "cpu")
    chunks = torch.from_numpy(read_chunks(args.chunks, "train")[: args.n_chunks])
    layers = list(range(len(decoder_layers(model))))
    cached = collect_residuals(model, layers, chunks)
    rows = []
    for layer in layers:
        share, n = token_direction_hits(
            model, cached[layer], chunks, tokenizer.all_special_ids, args.min_count, args.top_k
        )
        rows.append({"layer": layer, "share_in_top_k": round(share, 3), "n_tokens": n})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.model}: {chunks.numel()} tokens, tokens seen >= {args.min_count} times\n")
    print("| layer | " + " | ".join(str(r["layer"]) for r in rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    print(
        f"| token in top-{args.top_k} | "
        + " | ".join(f"{r['share_in_top_k']:.2f}" for r in rows)
        + " |"
    )


if __name__ == "__main__":
    main()
