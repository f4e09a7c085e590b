"""Mining speed: the batched single pass against the per-feature reference loop, in one
process.

Features per second of both on the same model, SAE, corpus chunks and features, their
ratio, peak memory above the model's, whether they pick the same examples, and the batched
pass's achieved GFLOP/s against the matmul roofline at its shapes (benchmarks/README.md).

    python benchmarks/bench_mining.py        # the demo's corpus and model (Gemma-3-270M)
    python benchmarks/bench_mining.py --sae 'results/gemma3-demo/layers/{layer}/sae.json'
"""

from __future__ import annotations

import torch
from common import bench_parser, decoder_roofline, roofline_cell, run_layers, timed

from saesteer.corpus import read_chunks
from saesteer.mining import MiningSettings, mine_reference, mine_top_examples
from saesteer.residuals import collect_residuals
from saesteer.settings import settings_for


def bench_layer(model, tokenizer, sae, layer: int, chunks, args, device: str) -> dict:
    generator = torch.Generator().manual_seed(layer)
    features = torch.randperm(sae.cfg.d_sae, generator=generator)[: args.features].tolist()
    settings = settings_for(MiningSettings, n_examples=args.n_examples, batch_size=args.batch_size)
    special = tokenizer.all_special_ids

    def fast(chunks):
        # The workflow's two steps: the residual cache (one pass), then mining from it.
        residuals = collect_residuals(model, [layer], chunks)[layer]
        return mine_top_examples(residuals, sae, chunks, features, special, settings)

    fast(chunks[:4])  # warm-up
    top, fast_s, fast_mib = timed(device, fast, chunks)

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
    # Every token goes through blocks 0..L, then the whole SAE encoder (TopK needs every
    # latent); the reference does the same work once per feature.
    d_model, d_sae = sae.cfg.d_in, sae.cfg.d_sae
    rows = settings.batch_size * chunks.shape[1]
    flops, peak = decoder_roofline(
        model.config,
        layers=layer + 1,
        context=(chunks.shape[1] + 1) / 2,
        rows=rows,
        head=False,
        extra={(rows, d_model, d_sae): d_model * d_sae},
        device=device,
    )
    fast_gflops = chunks.numel() * flops / fast_s / 1e9
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
        "matmul_peak_gflops": peak,
        "fast_gflops": fast_gflops,
        "fast_share_of_peak": fast_gflops / peak,
    }


def main() -> None:
    # The demo's corpus (`make demo`), tokenized for its model.
    parser = bench_parser(__doc__, model="gemma-3-270m", layers=(3, 9, 15))
    parser.add_argument("--chunks", default="results/gemma3-demo/corpus/chunks.parquet")
    parser.add_argument("--tokens", type=int, default=8192, help="train-split tokens mined")
    parser.add_argument("--features", type=int, default=32, help="features for the batched pass")
    parser.add_argument("--reference-features", type=int, default=2)
    parser.add_argument("--n-examples", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16, help="chunks per forward")
    args = parser.parse_args()
    chunks = torch.from_numpy(read_chunks(args.chunks, "train"))
    chunks = chunks[: max(1, args.tokens // chunks.shape[1])]
    run_layers(
        args,
        lambda model, tokenizer, sae, layer, device: bench_layer(
            model, tokenizer, sae, layer, chunks, args, device
        ),
        f"{len(chunks)} chunks x {chunks.shape[1]}",
        [
            "layer",
            "batched (features/s)",
            "reference (features/s)",
            "ratio",
            "peak MiB batched / ref",
            "same examples",
            "batched GFLOP/s (share of roofline)",
        ],
        lambda r: [
            str(r["layer"]),
            f"{r['fast_features_per_s']:.2f}",
            f"{r['reference_features_per_s']:.3f}",
            f"{r['ratio']:.0f}x",
            f"{r['fast_peak_mib']:.0f} / {r['reference_peak_mib']:.0f}",
            str(r["same_examples"]),
            roofline_cell(r["fast_gflops"], r["matmul_peak_gflops"]),
        ],
    )


if __name__ == "__main__":
    main()
