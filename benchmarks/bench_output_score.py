"""Output-score speed: the fast path against the reference loop, in one process.

Features per second of both paths on the same model, SAE, features and prompt, their
ratio, peak memory above the model's, the largest score difference between them, and the
fast path's achieved GFLOP/s against the matmul roofline at its shapes (benchmarks/README.md).

    python benchmarks/bench_output_score.py                       # embedded SmolLM2, random SAEs
    python benchmarks/bench_output_score.py --sae 'results/smollm2-demo/layers/{layer}/sae.json'
"""

from __future__ import annotations

import torch
from common import (
    bench_parser,
    decoder_roofline,
    decoder_shapes,
    roofline_cell,
    run_layers,
    timed,
)

from saesteer.logit_lens import logit_lens_topk
from saesteer.output_score import score_prompt_fast, score_prompt_reference
from saesteer.prompts import OUTPUT_SCORE_PROMPT, encode_prompt


def roofline(model, layer: int, prompt_len: int, rows: int, device: str) -> tuple[float, float]:
    """(FLOPs per feature, matmul roofline GFLOP/s): a steered feature is one token through
    the blocks after `layer`, attending to the prompt, and the LM head; `rows` features a
    forward."""
    after = decoder_shapes(model.config).after(layer)
    return decoder_roofline(
        model.config, layers=after, context=prompt_len, rows=rows, head=True, device=device
    )


def bench_layer(model, tokenizer, sae, layer: int, args, device: str) -> dict:
    generator = torch.Generator().manual_seed(layer)
    features = torch.randperm(sae.cfg.d_sae, generator=generator)[: args.features].tolist()
    tokens = logit_lens_topk(model, sae.W_dec, features, 20)[0]
    prompt = encode_prompt(tokenizer, args.prompt)
    n_ref = args.reference_features
    fast_args = (model, sae, layer, prompt, features, tokens, 10.0, args.batch_size)
    ref_args = (model, sae, layer, prompt, features[:n_ref], tokens[:n_ref], 10.0, 1)
    score_prompt_fast(model, sae, layer, prompt, features[:8], tokens[:8], 10.0, 8)  # warm-up
    score_prompt_reference(model, sae, layer, prompt, features[:2], tokens[:2], 10.0, 1)
    fast, fast_s, fast_mib = timed(device, score_prompt_fast, *fast_args)
    ref, ref_s, ref_mib = timed(device, score_prompt_reference, *ref_args)
    diff = (fast["score"][:n_ref] - ref["score"]).abs().max().item()
    fast_rate, ref_rate = len(features) / fast_s, n_ref / ref_s
    flops, peak = roofline(model, layer, len(prompt), min(args.batch_size, len(features)), device)
    return {
        "layer": layer,
        "fast_features_per_s": fast_rate,
        "reference_features_per_s": ref_rate,
        "ratio": fast_rate / ref_rate,
        "fast_peak_mib": fast_mib,
        "reference_peak_mib": ref_mib,
        "max_abs_score_diff": diff,
        "n_fast": len(features),
        "n_reference": n_ref,
        "matmul_peak_gflops": peak,
        "fast_gflops": fast_rate * flops / 1e9,
        "fast_share_of_peak": fast_rate * flops / 1e9 / peak,
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--features", type=int, default=256, help="features for the fast path")
    parser.add_argument("--reference-features", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--prompt", default=OUTPUT_SCORE_PROMPT)
    args = parser.parse_args()
    run_layers(
        args,
        lambda model, tokenizer, sae, layer, device: bench_layer(
            model, tokenizer, sae, layer, args, device
        ),
        f"batch {args.batch_size}",
        [
            "layer",
            "fast (features/s)",
            "reference (features/s)",
            "ratio",
            "peak MiB fast / ref",
            "max abs score diff",
            "fast GFLOP/s (share of roofline)",
        ],
        lambda r: [
            str(r["layer"]),
            f"{r['fast_features_per_s']:.1f}",
            f"{r['reference_features_per_s']:.2f}",
            f"{r['ratio']:.1f}x",
            f"{r['fast_peak_mib']:.0f} / {r['reference_peak_mib']:.0f}",
            f"{r['max_abs_score_diff']:.1e}",
            roofline_cell(r["fast_gflops"], r["matmul_peak_gflops"]),
        ],
    )


if __name__ == "__main__":
    main()
