"""Perplexity of answers to distinct prompts: the batched path against one forward per text,
in one process.

Every text has its own prompt, as the proxy judge's fluency and a concept run's answers
have, so no prompt's KV cache can be shared: the batched path right-pads whole texts across
prompts, sorted by length (`saesteer.gen_metrics.perplexities`). The reference is what the
public code and this pipeline's per-prompt path did for such texts: one forward per text,
scored with HF's own loss. Both score the continuation only (the proxy judge's mode), and
their perplexities are compared.

    python benchmarks/bench_perplexity.py --chunks results/gemma3-demo/corpus/chunks.parquet \
        --model resources/models/gemma-3-270m --texts 512
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch
from common import (
    block_matmul_mix,
    corpus_parser,
    decoder_shapes,
    load_corpus_model,
    matmul_peak,
    setup_line,
    timed,
)

from saesteer.corpus import read_chunks
from saesteer.costs import Shapes
from saesteer.gen_metrics import LOGIT_ELEMENTS, perplexities


def distinct_texts(chunks: np.ndarray, n: int, seed: int = 0) -> tuple[list, list]:
    """`n` (prompt, answer) token lists from distinct corpus chunks: prompts of 8-40 tokens
    and answers of 8-48, lengths drawn at random as a concept run's vary."""
    rng = np.random.default_rng(seed)
    if len(chunks) < n:
        raise SystemExit(f"--chunks has {len(chunks)} train chunks, fewer than --texts {n}")
    prompts, answers = [], []
    for row in rng.choice(len(chunks), n, replace=False):
        cut, length = int(rng.integers(8, 41)), int(rng.integers(8, 49))
        prompts.append(chunks[row, :cut].tolist())
        answers.append(chunks[row, cut : cut + length].tolist())
    return prompts, answers


@torch.no_grad()
def reference_loop(model, prompts, answers) -> list[float]:
    device = next(model.parameters()).device
    out = []
    for prompt, answer in zip(prompts, answers, strict=True):
        ids = torch.tensor([prompt + answer], device=device)
        labels = ids.clone()
        labels[0, : len(prompt)] = -100
        out.append(math.exp(model(ids, labels=labels).loss.item()))
    return out


def useful_flops(shapes: Shapes, prompts: list, answers: list) -> float:
    """FLOPs the task needs, whichever path runs it: every token but each text's last
    through the blocks (attending to the tokens before it), and the LM head at the
    answer's tokens only (the continuation is what is scored)."""
    flops = 0.0
    for prompt, answer in zip(prompts, answers, strict=True):
        fed = len(prompt) + len(answer) - 1
        flops += fed * shapes.blocks(shapes.layers, context=(fed + 1) / 2)
        flops += len(answer) * shapes.head()
    return flops


def path_peak(shapes: Shapes, rows: int, scored_share: float, device: str) -> float:
    """The matmul roofline of this path's mix, each shape weighted by its FLOPs per token:
    the block projections at `rows` tokens a forward, the LM head (at the scored share of
    the tokens) in row chunks of the vocabulary."""
    d, vocab = shapes.d, shapes.vocab
    head = {(max(1, LOGIT_ELEMENTS // vocab), d, vocab): scored_share * d * vocab}
    return matmul_peak({**block_matmul_mix(shapes, rows), **head}, device)


def main() -> None:
    parser = corpus_parser(__doc__)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32, help="gen_metrics.batch_size")
    parser.add_argument(
        "--reference-texts", type=int, default=128, help="texts the slow loop scores"
    )
    args = parser.parse_args()
    model, path, device = load_corpus_model(args)
    prompts, answers = distinct_texts(read_chunks(args.chunks, "train"), args.texts)
    tokens = sum(len(p) + len(a) for p, a in zip(prompts, answers, strict=True))
    perplexities(model, prompts[:4], answers[:4], False, args.batch_size)  # warm-up
    fast, fast_s, fast_mib = timed(
        device, perplexities, model, prompts, answers, False, args.batch_size
    )
    n = min(args.reference_texts, args.texts)
    ref_tokens = sum(len(p) + len(a) for p, a in zip(prompts[:n], answers[:n], strict=True))
    slow, slow_s, slow_mib = timed(device, reference_loop, model, prompts[:n], answers[:n])
    worst = max(abs(f / s - 1) for f, s in zip(fast, slow, strict=False))
    shapes = decoder_shapes(model.config)
    mean_len = tokens / args.texts
    scored = sum(len(a) for a in answers) / tokens
    peak = path_peak(shapes, round(args.batch_size * mean_len), scored, device)
    fast_gflops = useful_flops(shapes, prompts, answers) / fast_s / 1e9
    slow_gflops = useful_flops(shapes, prompts[:n], answers[:n]) / slow_s / 1e9
    result = {
        "texts": args.texts,
        "distinct_prompts": len(set(map(tuple, prompts))),
        "batched_tokens_per_s": tokens / fast_s,
        "reference_tokens_per_s": ref_tokens / slow_s,
        "ratio": (tokens / fast_s) / (ref_tokens / slow_s),
        "batched_peak_mib": fast_mib,
        "reference_peak_mib": slow_mib,
        "max_relative_difference": worst,
        "matmul_peak_gflops": peak,
        "batched_gflops": fast_gflops,
        "batched_share_of_peak": fast_gflops / peak,
        "reference_gflops": slow_gflops,
        "reference_share_of_peak": slow_gflops / peak,
    }
    print(json.dumps(result))
    print(setup_line(path, device, "float32", f"{args.texts} texts, batch {args.batch_size}"))
    print(
        f"batched {result['batched_tokens_per_s']:.0f} tokens/s, one forward per text "
        f"{result['reference_tokens_per_s']:.0f} tokens/s ({n} texts): "
        f"{result['ratio']:.1f}x; perplexities agree within {worst:.1e}"
    )
    print(
        f"roofline: matmul peak {peak:.0f} GFLOP/s at this path's shapes; batched "
        f"{fast_gflops:.0f} GFLOP/s ({fast_gflops / peak:.0%}), one forward per text "
        f"{slow_gflops:.0f} GFLOP/s ({slow_gflops / peak:.0%}) of the FLOPs the task needs"
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
