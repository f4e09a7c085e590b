"""Shared by the benchmarks: timing with peak memory, SAE loading, the command line and
the per-layer driver that prints the results table."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch

from saesteer.costs import Shapes, sampling_context
from saesteer.models import EmbeddedSource, load_model, resolve_device


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def peak_memory(device: str, result: dict):
    """Peak memory above the level at entry, in MiB: CUDA allocator stats on a GPU,
    resident set size sampled every millisecond on a CPU."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        yield
        torch.cuda.synchronize()
        result["peak_mib"] = (torch.cuda.max_memory_allocated() - start) / 2**20
        return
    start, peak, done = _rss_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        result["peak_mib"] = max(0, max(peak[0], _rss_bytes()) - start) / 2**20


def timed(device: str, func, *args, **kwargs) -> tuple[dict, float, float]:
    stats: dict = {}
    with peak_memory(device, stats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = func(*args, **kwargs)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return out, seconds, stats["peak_mib"]


def steered_generate(model, sae, layer, feature, factor, ids, settings, **stop) -> int:
    """New tokens of one reference-style `generate` call on prompt `ids` [1, n]: the public
    code's intervention (`steer_reference`) and temperature sampling from the settings'
    top-k (0: the full vocabulary); `stop` holds generate's stop arguments."""
    from saesteer.steering import steer_reference

    with steer_reference(model, sae, layer, feature, factor):
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            temperature=settings.temperature,
            top_k=settings.top_k or 0,
            top_p=1.0,
            max_new_tokens=settings.max_new_tokens,
            **stop,
        )
    return out.shape[1] - ids.shape[1]


def load_layer_sae(template: str | None, layer: int, d_in: int, device: str):
    from sae_lens import SAE, TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    if template and template.endswith(".json"):
        # A run's resolved SAE (layers/<L>/sae.json): the trained directory has a hashed name.
        from saesteer.io import read_json
        from saesteer.saes import load_sae

        return load_sae(read_json(template.format(layer=layer)), device=device)
    if template:
        sae = SAE.load_from_disk(template.format(layer=layer), device=device)
    else:
        torch.manual_seed(layer)
        cfg = TopKSAEConfig(
            d_in=d_in, d_sae=2048, k=64, metadata=SAEMetadata(hook_name=f"layer {layer}")
        )
        sae = TopKSAE(cfg).to(device)
    return sae.eval().requires_grad_(False)


def setup_line(path, device: str, dtype: str, extra: str) -> str:
    hardware = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor()
    return (
        f"{Path(path).name}, {device} ({hardware or platform.machine()}), "
        f"{torch.get_num_threads()} threads, dtype {dtype}, {extra}"
    )


def bench_parser(
    doc: str, model: str = "smollm2-135m-instruct", layers: tuple[int, ...] = (3, 15, 27)
) -> argparse.ArgumentParser:
    """The options every benchmark has: model, SAEs, layers, device, dtype, JSON output;
    `model` names the embedded model used by default."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--model", help=f"model directory (default: the embedded {model})")
    parser.set_defaults(embedded=model)
    parser.add_argument(
        "--sae",
        help="a run's sae.json or an SAE-Lens directory, a template with {layer}; default random",
    )
    parser.add_argument("--layers", type=int, nargs="+", default=list(layers))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--out", help="also write the results as JSON here")
    return parser


def corpus_parser(doc: str) -> argparse.ArgumentParser:
    """The options of the benchmarks that read a run's corpus: chunks, model, device, out."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--chunks", required=True, help="a run's corpus/chunks.parquet")
    parser.add_argument("--model", help="model directory (default: the embedded Gemma-3-270M)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out")
    return parser


def load_corpus_model(args) -> tuple:
    """(model, its path, device) of a `corpus_parser` command line, in float32."""
    device = resolve_device(args.device)
    path = args.model or EmbeddedSource("gemma-3-270m").resolve()
    model, _ = load_model(path, "float32", device)
    return model, path, device


def run_layers(
    args,
    bench_layer: Callable[..., dict],
    setup: str,
    columns: list[str],
    row: Callable[[dict], list[str]],
) -> None:
    """Load the model once, run `bench_layer(model, tokenizer, sae, layer, device)` per
    layer (a JSON line each), then print a Markdown table of `row(result)` cells."""
    device = resolve_device(args.device)
    path = args.model or EmbeddedSource(args.embedded).resolve()
    model, tokenizer = load_model(path, args.dtype, device)
    d_model = model.config.get_text_config().hidden_size
    rows = []
    for layer in args.layers:
        sae = load_layer_sae(args.sae, layer, d_model, device)
        rows.append(bench_layer(model, tokenizer, sae, layer, device))
        print(json.dumps(rows[-1]), flush=True)
    header = setup_line(path, device, args.dtype, setup)
    print(f"\n{header}\n")
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    for result in rows:
        print("| " + " | ".join(row(result)) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps({"setup": header, "layers": rows}, indent=2) + "\n")


def matmul_gflops(m: int, k: int, n: int, device: str, dtype=torch.float32, seconds=0.5) -> float:
    """GFLOP/s of `[m, k] @ [k, n]` on this machine, in this process (best of repeats for
    about `seconds`): the roofline a path's matmuls of that shape can reach."""
    a = torch.randn(m, k, device=device, dtype=dtype)
    b = torch.randn(k, n, device=device, dtype=dtype)
    a @ b  # warm-up
    best, spent = math.inf, 0.0
    while spent < seconds:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return 2 * m * k * n / best / 1e9


def matmul_peak(shapes: dict[tuple[int, int, int], float], device: str, dtype=torch.float32):
    """The matmul rate of a path's own mix: `shapes` maps (m, k, n) to the share of the
    path's FLOPs done at that shape; the result is the GFLOP/s of doing exactly that mix
    at each shape's measured rate (a weighted harmonic mean)."""
    total = sum(shapes.values())
    return total / sum(w / matmul_gflops(*s, device, dtype) for s, w in shapes.items())


def decoder_shapes(config) -> Shapes:
    """The sizes the FLOP count (saesteer.costs) reads, from a Hugging Face config."""
    return Shapes.from_hf_config(config.to_dict())


def block_matmul_mix(s: Shapes, rows: int) -> dict[tuple[int, int, int], float]:
    """The blocks' projection matmuls at `rows` tokens a forward, each shape weighted by
    its multiply-adds per token (`matmul_peak`'s input)."""
    d, q, kv, ff, layers = s.d, s.q, s.kv, s.ff, s.layers
    return {
        (rows, d, q): layers * d * q,
        (rows, d, kv): layers * 2 * d * kv,
        (rows, q, d): layers * q * d,
        (rows, d, ff): layers * 2 * d * ff,
        (rows, ff, d): layers * ff * d,
    }


def decoder_roofline(
    config, *, layers: int, context: float, rows: int, head: bool, extra=None, device: str
) -> tuple[float, float]:
    """(FLOPs per token, matmul roofline GFLOP/s) of tokens that go through the first
    `layers` blocks (attending to `context` positions), `rows` tokens a forward, then the
    LM head if `head`; `extra` maps more matmul shapes (m, k, n) to their multiply-adds
    per token (an SAE encoder, say)."""
    s = decoder_shapes(config)
    mix = {**block_matmul_mix(s.first(layers), rows), **(extra or {})}
    if head:
        mix[(rows, s.d, s.vocab)] = s.d * s.vocab
    flops = s.token(layers, context, head) + 2 * sum((extra or {}).values())
    return flops, matmul_peak(mix, device)


def roofline_cell(gflops: float, peak: float) -> str:
    return f"{gflops:.0f} of {peak:.0f} ({gflops / peak:.0%})"


def sampling_roofline(model, prompt_len: float, new_tokens: float, rows: int, device: str):
    """`decoder_roofline` of sampling: each new token goes through every block, attending
    to the prompt and the tokens sampled before it (on average half of `new_tokens`), and
    the LM head; `rows` sequences a forward. The prompt's own forward is not counted."""
    return decoder_roofline(
        model.config,
        layers=model.config.get_text_config().num_hidden_layers,
        context=sampling_context(prompt_len, new_tokens),
        rows=rows,
        head=True,
        device=device,
    )
