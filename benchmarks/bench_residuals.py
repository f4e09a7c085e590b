"""The residual cache's saving: one model pass for all layers against a pass per layer and
reader (SAE training, mining, SAE metrics), in one process.

The per-layer scheme is what the workflow ran before the cache: each of the three readers
ran the model up to its layer over its own chunks. Both give the same residuals (checked).

    python benchmarks/bench_residuals.py --chunks results/gemma3-demo/corpus/chunks.parquet \
        --model resources/models/gemma-3-270m --layers 0 1 9 16 --scale 0.125
"""

from __future__ import annotations

import json
import math

import torch
from common import corpus_parser, load_corpus_model, setup_line, timed

from saesteer.corpus import read_chunks
from saesteer.hooks import block_output
from saesteer.residuals import collect_residuals


def per_layer_passes(model, layers, readers) -> dict:
    """The old scheme: every reader runs the model up to each layer over its chunks."""
    out = {}
    for layer in layers:
        for name, chunks in readers.items():
            parts = [
                block_output(model, layer, torch.from_numpy(chunks[i : i + 16])).cpu()
                for i in range(0, len(chunks), 16)
            ]
            out[layer, name] = torch.cat(parts)
    return out


def one_pass(model, layers, splits) -> dict:
    return {split: collect_residuals(model, layers, chunks) for split, chunks in splits.items()}


def main() -> None:
    parser = corpus_parser(__doc__)
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 1, 9, 16])
    parser.add_argument(
        "--train-tokens", type=int, default=64000, help="sae.train.activation_tokens"
    )
    parser.add_argument(
        "--mining-tokens", type=int, default=24576, help="activations.mine.max_tokens"
    )
    parser.add_argument("--metrics-tokens", type=int, default=8192, help="sae_metrics.max_tokens")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the three sizes")
    args = parser.parse_args()
    model, path, device = load_corpus_model(args)
    train, heldout = read_chunks(args.chunks, "train"), read_chunks(args.chunks, "heldout")
    ctx = train.shape[1]
    n_train = math.ceil(args.train_tokens * args.scale / (ctx - 1))
    n_mining = max(1, int(args.mining_tokens * args.scale) // ctx)
    n_metrics = max(1, int(args.metrics_tokens * args.scale) // ctx)
    readers = {"train": train[:n_train], "mining": train[:n_mining], "metrics": heldout[:n_metrics]}
    splits = {"train": train[: max(n_train, n_mining)], "heldout": heldout[:n_metrics]}
    one_pass(model, args.layers, {"train": train[:2]})  # warm-up
    old, old_s, _ = timed(device, per_layer_passes, model, args.layers, readers)
    new, new_s, _ = timed(device, one_pass, model, args.layers, splits)
    same = all(
        torch.equal(
            old[layer, name], new["heldout" if name == "metrics" else "train"][layer][: len(chunks)]
        )
        for layer in args.layers
        for name, chunks in readers.items()
    )
    result = {
        "layers": args.layers,
        "chunks": {name: len(c) for name, c in readers.items()},
        "context": ctx,
        "per_layer_s": old_s,
        "one_pass_s": new_s,
        "ratio": old_s / new_s,
        "same_residuals": same,
    }
    print(json.dumps(result))
    print(setup_line(path, device, "float32", f"layers {args.layers}, scale {args.scale}"))
    print(f"per layer and reader: {old_s:.1f} s; one pass: {new_s:.1f} s; {old_s / new_s:.2f}x")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
