"""Steered-generation speed: the batched grid sampler against the public code's loop.

Generated tokens per second of both, in one process, on the same model, SAE, features,
factors and prefixes:
- batched: `generate_grid`, many (feature, factor, prefix) rows per forward with a shared
  prefix KV cache, per-row steering and per-row stop (finished rows leave the batch);
- reference: one prefix per `model.generate` call with the public code's intervention
  (`steer_reference`), temperature sampling and a stop at ".", as the public code runs it.

The last column is the achieved GFLOP/s against the matmul roofline at the sampler's
shapes (benchmarks/README.md).

    python benchmarks/bench_generation.py                       # embedded SmolLM2, random SAEs
    python benchmarks/bench_generation.py --sae 'results/smollm2-demo/layers/{layer}/sae.json'
"""

from __future__ import annotations

import torch
from common import (
    bench_parser,
    roofline_cell,
    run_layers,
    sampling_roofline,
    steered_generate,
    timed,
)

from saesteer.generation import FACTOR_GRID, generate_grid
from saesteer.prompts import PREFIXES, encode_prompt
from saesteer.sampling import SamplingSettings
from saesteer.settings import settings_for
from saesteer.steering import SteeringTarget


def reference_loop(model, tokenizer, sae, layer, rows, settings) -> int:
    """Generated tokens of `rows` [(feature, factor, prefix)], one `generate` call each."""
    total = 0
    for feature, factor, prefix in rows:
        ids = torch.tensor([encode_prompt(tokenizer, prefix)], device=model.device)
        total += steered_generate(
            model,
            sae,
            layer,
            feature,
            factor,
            ids,
            settings,
            stop_strings=[settings.stop],
            tokenizer=tokenizer,
            pad_token_id=tokenizer.eos_token_id,
        )
    return total


def bench_layer(model, tokenizer, sae, layer: int, args, device: str) -> dict:
    generator = torch.Generator().manual_seed(layer)
    features = torch.randperm(sae.cfg.d_sae, generator=generator)[: args.features].tolist()
    prefixes = list(PREFIXES[: args.prefixes])
    settings = settings_for(SamplingSettings, batch_size=args.batch_size)
    factors = list(FACTOR_GRID)
    target = SteeringTarget(model, tokenizer, sae, layer)
    grid_args = (target, features, factors, prefixes, settings)
    generate_grid(target, features[:1], [0.0, 4.0], prefixes[:2], settings)
    frame, batched_s, batched_mib = timed(device, generate_grid, *grid_args)
    # The reference loop's rows: spread over the grid (every factor, several prefixes).
    rows = [
        (features[i % len(features)], factors[i % len(factors)], prefixes[i % len(prefixes)])
        for i in range(args.reference_rows)
    ]
    reference_loop(model, tokenizer, sae, layer, rows[:1], settings)  # warm-up
    ref_tokens, ref_s, ref_mib = timed(
        device, reference_loop, model, tokenizer, sae, layer, rows, settings
    )
    # Shared factor-0 texts are generated once: count the tokens actually sampled.
    sampled = frame.unique(["factor", "prefix_id", "seed"])["n_tokens"].sum()
    batched_rate, ref_rate = sampled / batched_s, ref_tokens / ref_s
    texts = frame.unique(["factor", "prefix_id", "seed"])
    prompt_len = sum(len(encode_prompt(tokenizer, p)) for p in prefixes) / len(prefixes)
    flops, peak = sampling_roofline(
        model, prompt_len, texts["n_tokens"].mean(), args.batch_size, device
    )
    return {
        "layer": layer,
        "batched_tokens_per_s": batched_rate,
        "reference_tokens_per_s": ref_rate,
        "ratio": batched_rate / ref_rate,
        "batched_peak_mib": batched_mib,
        "reference_peak_mib": ref_mib,
        "batched_texts": int(frame.unique(["factor", "prefix_id", "seed"]).height),
        "batched_tokens": int(sampled),
        "batched_seconds": batched_s,
        "reference_texts": len(rows),
        "reference_tokens": ref_tokens,
        "matmul_peak_gflops": peak,
        "batched_gflops": batched_rate * flops / 1e9,
        "reference_gflops": ref_rate * flops / 1e9,
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--prefixes", type=int, default=10)
    parser.add_argument("--reference-rows", type=int, default=26)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    run_layers(
        args,
        lambda model, tokenizer, sae, layer, device: bench_layer(
            model, tokenizer, sae, layer, args, device
        ),
        f"batch {args.batch_size}, {args.features} features x {len(FACTOR_GRID)} factors "
        f"x {args.prefixes} prefixes",
        [
            "layer",
            "batched (tokens/s)",
            "reference loop (tokens/s)",
            "ratio",
            "peak MiB batched / ref",
            "batched texts, tokens, s",
            "batched / reference GFLOP/s (share of roofline)",
        ],
        lambda r: [
            str(r["layer"]),
            f"{r['batched_tokens_per_s']:.0f}",
            f"{r['reference_tokens_per_s']:.1f}",
            f"{r['ratio']:.1f}x",
            f"{r['batched_peak_mib']:.0f} / {r['reference_peak_mib']:.0f}",
            f"{r['batched_texts']}, {r['batched_tokens']}, {r['batched_seconds']:.0f}",
            roofline_cell(r["batched_gflops"], r["matmul_peak_gflops"])
            + f" / {r['reference_gflops'] / r['matmul_peak_gflops']:.0%}",
        ],
    )


if __name__ == "__main__":
    main()
