"""Concept-steering answers: the batched sampler against a per-answer `generate` loop.

Generated tokens per second of both, in one process, on the same model, SAE, concepts,
factors and instructions (the `chat` protocol: chat template, temperature 0.7, top-k 50,
up to 128 new tokens, stop at the end of the turn):
- batched: `generate_concepts` (SAE and DiffMean-shaped rows over the factor grid plus
  prompting), many rows per forward, per-row steering, stop and random stream;
- reference: one answer per `model.generate` call with the public code's intervention
  (`steer_reference`), as a per-concept loop would run it.

    python benchmarks/bench_concepts.py --layers 27
    python benchmarks/bench_concepts.py --sae 'results/smollm2-demo/layers/{layer}/sae.json'
"""

from __future__ import annotations

import polars as pl
import torch
from common import (
    bench_parser,
    roofline_cell,
    run_layers,
    sampling_roofline,
    steered_generate,
    timed,
)

from saesteer.concepts.answers import chat_ids, end_of_turn_ids, generate_concepts
from saesteer.concepts.instructions import concept_instructions
from saesteer.sampling import SamplingSettings
from saesteer.settings import settings_for
from saesteer.steering import SteeringTarget, steering_directions


def reference_loop(model, tokenizer, sae, layer, rows, settings) -> int:
    """Generated tokens of `rows` [(feature, factor, instruction)], one call each."""
    total = 0
    stop = end_of_turn_ids(model, tokenizer)
    for feature, factor, instruction in rows:
        ids = torch.tensor([chat_ids(tokenizer, instruction)], device=model.device)
        total += steered_generate(
            model,
            sae,
            layer,
            feature,
            factor,
            ids,
            settings,
            eos_token_id=stop,
            pad_token_id=stop[0],
        )
    return total


def bench_layer(model, tokenizer, sae, layer: int, args, device: str) -> dict:
    generator = torch.Generator().manual_seed(layer)
    features = torch.randperm(sae.cfg.d_sae, generator=generator)[: args.concepts].tolist()
    concepts = pl.DataFrame(
        {
            "layer": [layer] * len(features),
            "feature": features,
            "concept": [f"concept {f}" for f in features],
        }
    )
    instructions = concept_instructions("builtin", layer, features, 10, 0)
    rows = steering_directions(sae, features)
    directions = {
        "sae": dict(zip(features, rows, strict=True)),
        "diffmean": dict(zip(features, rows.flip(-1), strict=True)),  # any other direction
    }
    settings = settings_for(
        SamplingSettings, max_new_tokens=128, stop=None, batch_size=args.batch_size
    )
    factors = args.factors
    target = SteeringTarget(model, tokenizer, sae, layer)
    call = (target, concepts, instructions, factors, directions, 5)
    frame, batched_s, batched_mib = timed(
        device, generate_concepts, *call, settings, protocol="chat"
    )
    reference = [
        (features[i % len(features)], factors[i % len(factors)], instructions[features[0]][i % 10])
        for i in range(args.reference_rows)
    ]
    reference_loop(model, tokenizer, sae, layer, reference[:1], settings)  # warm-up
    ref_tokens, ref_s, ref_mib = timed(
        device, reference_loop, model, tokenizer, sae, layer, reference, settings
    )
    batched_rate = frame["n_tokens"].sum() / batched_s
    ref_rate = ref_tokens / ref_s
    prompts = [chat_ids(tokenizer, text) for text in instructions[features[0]]]
    prompt_len = sum(len(p) for p in prompts) / len(prompts)
    flops, peak = sampling_roofline(
        model, prompt_len, frame["n_tokens"].mean(), args.batch_size, device
    )
    return {
        "layer": layer,
        "batched_tokens_per_s": batched_rate,
        "reference_tokens_per_s": ref_rate,
        "ratio": batched_rate / ref_rate,
        "batched_peak_mib": batched_mib,
        "reference_peak_mib": ref_mib,
        "batched_answers": frame.height,
        "batched_tokens": int(frame["n_tokens"].sum()),
        "batched_seconds": batched_s,
        "reference_answers": len(reference),
        "reference_tokens": ref_tokens,
        "matmul_peak_gflops": peak,
        "batched_gflops": batched_rate * flops / 1e9,
        "reference_gflops": ref_rate * flops / 1e9,
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--concepts", type=int, default=4)
    parser.add_argument("--factors", type=float, nargs="+", default=[2.0, 4.0, 10.0])
    parser.add_argument("--reference-rows", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    run_layers(
        args,
        lambda model, tokenizer, sae, layer, device: bench_layer(
            model, tokenizer, sae, layer, args, device
        ),
        f"batch {args.batch_size}, {args.concepts} concepts x 10 instructions x "
        f"{len(args.factors)} factors x 2 steered methods + prompting, 128 new tokens",
        [
            "layer",
            "batched (tokens/s)",
            "reference loop (tokens/s)",
            "ratio",
            "peak MiB batched / ref",
            "batched answers, tokens, s",
            "batched / reference GFLOP/s (share of roofline)",
        ],
        lambda r: [
            str(r["layer"]),
            f"{r['batched_tokens_per_s']:.0f}",
            f"{r['reference_tokens_per_s']:.1f}",
            f"{r['ratio']:.1f}x",
            f"{r['batched_peak_mib']:.0f} / {r['reference_peak_mib']:.0f}",
            f"{r['batched_answers']}, {r['batched_tokens']}, {r['batched_seconds']:.0f}",
            roofline_cell(r["batched_gflops"], r["matmul_peak_gflops"])
            + f" / {r['reference_gflops'] / r['matmul_peak_gflops']:.0%}",
        ],
    )


if __name__ == "__main__":
    main()
