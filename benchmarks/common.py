"""Shared by the benchmarks: timing with peak memory, SAE loading, the setup line."""

from __future__ import annotations

import os
import platform
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch


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


def timed(device: str, func, *args) -> tuple[dict, float, float]:
    stats: dict = {}
    with peak_memory(device, stats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = func(*args)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return out, seconds, stats["peak_mib"]


def load_layer_sae(template: str | None, layer: int, d_in: int, device: str):
    from sae_lens import SAE, TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

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
