"""Mining speed: the batched single pass against the per-feature reference loop, in one
process.

Features per second of both on the same model, SAE, corpus chunks and features, their
ratio, peak memory above the model's, and whether they pick the same examples.

    python benchmarks/bench_mining.py --sae 'results/smollm2-demo/layers/{layer}/sae'
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from common import load_layer_sae, setup_line, timed

from saesteer.corpus import read_chunks
from saesteer.mining import MiningSettings, mine_reference, mine_top_examples
from saesteer.models import EmbeddedSource, load_model, resolve_device


def bench_layer(model, tokenizer, sae, layer: int, chunks, args, device: str) -> dict:
    generator = torch.Generator().manual_seed(layer)
    features = torch.randperm(sae.cfg.d_sae, generator=generator)[: args.features].tolist()
    settings = MiningSettings(n_examples=args.n_examples, batch_size=args.batch_size)
    special = tokenizer.all_special_ids
    mine_top_examples(model, sae, layer, chunks[:4], features, special, settings)  # warm-up
    top, fast_s, fast_mib = timed(
        device, mine_top_examples, model, sae, layer, chunks, features, special, settings
    )

    def reference():
        return [
            mine_reference(model, sae, layer, chunks, f, special, settings)
            for f in features[: args.reference_features]
        ]

    ref, ref_s, ref_mib = timed(device, reference)
    same = [
        top.chunk[row, : len(examples)].tolist() == [e[1] for e in examples]
        for row, examples in enumerate(ref)
    ]
    fast_rate, ref_rate = len(features) / fast_s, len(ref) / ref_s
    return {
        "layer": layer,
        "tokens": chunks.numel(),
        "fast_features_per_s": fast_rate,
        "reference_features_per_s": ref_rate,
        "ratio": fast_rate / ref_rate,
        "fast_peak_mib": fast_mib,
        "reference_peak_mib": ref_mib,
        "same_examples": f"{sum(same)}/{len(same)}",
        "n_fast": len(features),
        "n_reference": len(ref),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: the embedded SmolLM2)")
    parser.add_argument("--sae", help="SAE-Lens directory template with {layer}; default random")
    parser.add_argument("--chunks", default="results/smollm2-demo/corpus/chunks.parquet")
    parser.add_argument("--tokens", type=int, default=8192, help="train-split tokens mined")
    parser.add_argument("--layers", type=int, nargs="+", default=[3, 15, 27])
    parser.add_argument("--features", type=int, default=32, help="features for the batched pass")
    parser.add_argument("--reference-features", type=int, default=2)
    parser.add_argument("--n-examples", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16, help="chunks per forward")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()

    device = resolve_device(args.device)
    path = args.model or EmbeddedSource("smollm2-135m-instruct").resolve()
    model, tokenizer = load_model(path, args.dtype, device)
    chunks = torch.from_numpy(read_chunks(args.chunks, "train"))
    chunks = chunks[: max(1, args.tokens // chunks.shape[1])]
    d_model = model.config.get_text_config().hidden_size
    rows = []
    for layer in args.layers:
        sae = load_layer_sae(args.sae, layer, d_model, device)
        rows.append(bench_layer(model, tokenizer, sae, layer, chunks, args, device))
        print(json.dumps(rows[-1]), flush=True)
    header = setup_line(path, device, args.dtype, f"{len(chunks)} chunks x {chunks.shape[1]}")
    print(f"\n{header}\n")
    print(
        "| layer | batched (features/s) | reference (features/s) | ratio "
        "| peak MiB batched / ref | same examples |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['layer']} | {r['fast_features_per_s']:.2f} | "
            f"{r['reference_features_per_s']:.3f} | {r['ratio']:.0f}x | "
            f"{r['fast_peak_mib']:.0f} / {r['reference_peak_mib']:.0f} | {r['same_examples']} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"setup": header, "layers": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
