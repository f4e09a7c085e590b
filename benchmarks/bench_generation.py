"""Steered-generation speed: the batched grid sampler against the public code's loop.

Generated tokens per second of both, in one process, on the same model, SAE, features,
factors and prefixes:
- batched: `generate_grid`, many (feature, factor, prefix) rows per forward with a shared
  prefix KV cache, per-row steering and per-row stop (finished rows leave the batch);
- reference: one prefix per `model.generate` call with the public code's intervention
  (`steer_reference`), temperature sampling and a stop at ".", as the public code runs it.

    python benchmarks/bench_generation.py                       # embedded SmolLM2, random SAEs
    python benchmarks/bench_generation.py --sae 'results/smollm2-demo/layers/{layer}/sae'
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from common import load_layer_sae, setup_line, timed

from saesteer.generation import FACTOR_GRID, SamplingSettings, generate_grid
from saesteer.models import EmbeddedSource, load_model, resolve_device
from saesteer.prompts import PREFIXES, encode_prompt
from saesteer.steering import steer_reference


def reference_loop(model, tokenizer, sae, layer, rows, settings) -> int:
    """Generated tokens of `rows` [(feature, factor, prefix)], one `generate` call each."""
    total = 0
    for feature, factor, prefix in rows:
        ids = torch.tensor([encode_prompt(tokenizer, prefix)], device=model.device)
        with steer_reference(model, sae, layer, feature, factor):
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=settings.temperature,
                top_k=0,
                top_p=1.0,
                max_new_tokens=settings.max_new_tokens,
                stop_strings=[settings.stop],
                tokenizer=tokenizer,
                pad_token_id=tokenizer.eos_token_id,
            )
        total += out.shape[1] - ids.shape[1]
    return total


def bench_layer(model, tokenizer, sae, layer: int, args, device: str) -> dict:
    generator = torch.Generator().manual_seed(layer)
    features = torch.randperm(sae.cfg.d_sae, generator=generator)[: args.features].tolist()
    prefixes = list(PREFIXES[: args.prefixes])
    settings = SamplingSettings(batch_size=args.batch_size)
    factors = list(FACTOR_GRID)
    grid_args = (model, tokenizer, sae, layer, features, factors, prefixes, 0, settings)
    generate_grid(model, tokenizer, sae, layer, features[:1], [0.0, 4.0], prefixes[:2], 0, settings)
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
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: the embedded SmolLM2)")
    parser.add_argument("--sae", help="SAE-Lens directory template with {layer}; default random")
    parser.add_argument("--layers", type=int, nargs="+", default=[3, 15, 27])
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--prefixes", type=int, default=10)
    parser.add_argument("--reference-rows", type=int, default=26)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()

    device = resolve_device(args.device)
    path = args.model or EmbeddedSource("smollm2-135m-instruct").resolve()
    model, tokenizer = load_model(path, args.dtype, device)
    d_model = model.config.get_text_config().hidden_size
    rows = []
    for layer in args.layers:
        sae = load_layer_sae(args.sae, layer, d_model, device)
        rows.append(bench_layer(model, tokenizer, sae, layer, args, device))
        print(json.dumps(rows[-1]), flush=True)
    extra = (
        f"batch {args.batch_size}, {args.features} features x {len(FACTOR_GRID)} factors "
        f"x {args.prefixes} prefixes"
    )
    header = setup_line(path, device, args.dtype, extra)
    print(f"\n{header}\n")
    print(
        "| layer | batched (tokens/s) | reference loop (tokens/s) | ratio "
        "| peak MiB batched / ref | batched texts, tokens, s |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['layer']} | {r['batched_tokens_per_s']:.0f} | "
            f"{r['reference_tokens_per_s']:.1f} | {r['ratio']:.1f}x | "
            f"{r['batched_peak_mib']:.0f} / {r['reference_peak_mib']:.0f} | "
            f"{r['batched_texts']}, {r['batched_tokens']}, {r['batched_seconds']:.0f} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"setup": header, "layers": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
