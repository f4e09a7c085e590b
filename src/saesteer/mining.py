"""Local mining of top activating examples: one pass over a layer's cached residuals,
keeping a running top-N of contexts per feature, in Neuronpedia's schema
(`saesteer.activations`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from tqdm import tqdm

from saesteer.activations import Example
from saesteer.errors import ResidualsError
from saesteer.hooks import non_sink_positions
from saesteer.models import decoder_layers

# The activation histogram's bin edges: half-octaves from 2^-10 to 2^16, fixed so that one
# pass can count (a feature's largest activation is known only at the end); an activation
# outside them counts in the first or last bin.
HISTOGRAM_EDGES = [2.0 ** (e / 2) for e in range(-20, 33)]


@dataclass(frozen=True)
class MiningSettings:
    SECTIONS: ClassVar = ("activations", "activations.mine")
    n_examples: int
    context_before: int  # tokens kept before the max-activating one
    context_after: int  # and after it (clipped to the chunk)
    max_tokens: int | None  # corpus tokens to run (None = every train chunk)
    batch_size: int  # chunks per forward
    max_latents: int  # positions x d_sae encoded at once (bounds memory)


@dataclass
class TopExamples:
    """Per feature (rows), the best examples so far (columns), strongest first."""

    value: torch.Tensor  # [F, n] max activation in the context
    chunk: torch.Tensor  # [F, n] corpus chunk it came from
    token_ids: torch.Tensor  # [F, n, W] the context window, -1 outside the chunk
    values: torch.Tensor  # [F, n, W] the feature's activation at each window position
    # Over every mined position (special tokens and sinks left out): how many there were,
    # and at how many each feature fired (activation > 0). Set by mine_top_examples.
    n_tokens: int | None = None
    n_active: torch.Tensor | None = None  # [F]
    histogram: torch.Tensor | None = None  # [F, len(HISTOGRAM_EDGES) - 1] positive ones

    def density(self) -> list[float | None]:
        """Per feature, the share of mined positions where it fired."""
        if self.n_active is None or not self.n_tokens:
            return [None] * len(self.value)
        return (self.n_active.double() / self.n_tokens).tolist()

    @staticmethod
    def best(parts: list[TopExamples], n: int) -> TopExamples:
        """The `n` largest of `parts`; a stable sort keeps earlier chunks first among ties."""
        order = torch.cat([p.value for p in parts], 1).sort(dim=1, descending=True, stable=True)
        order = order.indices[:, :n]
        return TopExamples(
            *(
                _take(torch.cat([getattr(p, name) for p in parts], 1), order)
                for name in ("value", "chunk", "token_ids", "values")
            )
        )


def _take(t: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    index = order.reshape(*order.shape, *([1] * (t.dim() - 2))).expand(*order.shape, *t.shape[2:])
    return t.gather(1, index)


@torch.no_grad()
def mine_top_examples(
    residuals: torch.Tensor,
    sae,
    chunks: torch.Tensor,
    features: list[int],
    special_ids: list[int],
    settings: MiningSettings,
    desc: str = "mining",
) -> TopExamples:
    """Each feature's top contexts over `chunks` [n, ctx], given block L's outputs for them
    (`residuals` [n, ctx, d], from the run's cache): one example per chunk (its
    max-activating position), windowed around that position.

    Special tokens and attention sinks get activation 0, as in SAE training and metrics:
    the SAE never modeled them, so their huge-norm residuals give meaningless latents."""
    if residuals.shape[:2] != chunks.shape:
        raise ResidualsError(
            f"residuals {tuple(residuals.shape)} do not match chunks {tuple(chunks.shape)}"
        )
    device = sae.W_dec.device
    index = torch.as_tensor(features, dtype=torch.long, device=device)
    window = torch.arange(-settings.context_before, settings.context_after + 1, device=device)
    top = None
    n_tokens, n_active = 0, torch.zeros(len(features), dtype=torch.long, device=device)
    inner = torch.tensor(HISTOGRAM_EDGES[1:-1], device=device)
    n_bins = len(HISTOGRAM_EDGES) - 1
    histogram = torch.zeros(len(features) * n_bins, dtype=torch.long, device=device)
    for start in tqdm(range(0, len(chunks), settings.batch_size), desc=desc):
        tokens = chunks[start : start + settings.batch_size].to(device)
        hidden = residuals[start : start + settings.batch_size].to(device)
        acts = _encode_selected(sae, hidden, index, settings.max_latents)  # [B, T, F]
        counted = _non_sink_per_chunk(tokens, hidden, special_ids)
        acts = acts * counted.unsqueeze(-1)
        n_tokens += int(counted.sum())
        fired = acts > 0
        n_active += fired.sum((0, 1))
        # bin b holds (edge b, edge b+1]; `nonzero` lists the last dim (features) fastest
        column = fired.nonzero()[:, -1]
        bins = torch.bucketize(acts[fired], inner)
        histogram += torch.bincount(column * n_bins + bins, minlength=histogram.numel())
        batch = _batch_candidates(tokens, acts.transpose(1, 2), window, start)
        top = TopExamples.best([t for t in (top, batch) if t is not None], settings.n_examples)
    top.n_tokens, top.n_active = n_tokens, n_active.cpu()
    top.histogram = histogram.reshape(len(features), n_bins).cpu()
    return top


def _encode_selected(sae, hidden: torch.Tensor, index: torch.Tensor, max_latents: int):
    """The selected latents of every position, encoding a slice of positions at a time so
    that positions x d_sae stays under `max_latents` (a 1M-latent SAE would otherwise
    need gigabytes for one batch)."""
    flat = hidden.reshape(-1, hidden.shape[-1]).to(sae.W_dec.dtype)
    step = max(1, max_latents // sae.cfg.d_sae)
    parts = [sae.encode(part)[:, index].float() for part in flat.split(step)]
    return torch.cat(parts).reshape(*hidden.shape[:-1], len(index))


def _non_sink_per_chunk(tokens, hidden, special_ids) -> torch.Tensor:
    """The sink test per chunk, so examples do not depend on how chunks are batched."""
    pairs = zip(tokens.split(1), hidden.split(1), strict=True)
    return torch.cat([non_sink_positions(t, h, special_ids) for t, h in pairs])


def _batch_candidates(
    tokens: torch.Tensor, acts: torch.Tensor, window: torch.Tensor, first_chunk: int
) -> TopExamples:
    """One candidate per (feature, chunk) of the batch; `acts` is [B, F, T]."""
    n_chunks, n_features, length = acts.shape
    value, position = acts.max(-1)  # [B, F]
    where = position.unsqueeze(-1) + window  # [B, F, W]
    inside = (where >= 0) & (where < length)
    where = where.clamp(0, length - 1)
    values = acts.gather(2, where).masked_fill(~inside, 0.0)
    ids = tokens.unsqueeze(1).expand(-1, n_features, -1).gather(2, where).masked_fill(~inside, -1)
    chunk = torch.arange(n_chunks, device=acts.device) + first_chunk
    return TopExamples(
        value.T.contiguous(),
        chunk.unsqueeze(0).expand(n_features, -1).contiguous(),
        ids.transpose(0, 1).contiguous(),
        values.transpose(0, 1).contiguous(),
    )


@torch.no_grad()
def mine_reference(
    model,
    sae,
    layer: int,
    chunks: torch.Tensor,
    feature: int,
    special_ids: list[int],
    settings: MiningSettings,
    sink_factor: float = 10.0,
) -> list[tuple[float, int, list[int], list[float]]]:
    """One feature, one chunk at a time, in plain Python: the per-feature loop that
    `mine_top_examples` replaces. Returns (max value, chunk, window ids, window values),
    strongest first (earlier chunks first among ties).

    Shares no code with the fast path: block L's output is read by a hook of its own, and
    the sink filter is written out here."""
    found = []
    for c, ids, acts, _ in _reference_chunks(
        model, sae, layer, chunks, feature, special_ids, sink_factor
    ):
        peak = max(range(len(acts)), key=acts.__getitem__)
        lo = max(0, peak - settings.context_before)
        hi = min(len(acts), peak + settings.context_after + 1)
        found.append((acts[peak], c, ids[lo:hi], acts[lo:hi]))
    found.sort(key=lambda e: (-e[0], e[1]))
    return [e for e in found if e[0] > 0][: settings.n_examples]


@torch.no_grad()
def density_reference(
    model, sae, layer: int, chunks, feature: int, special_ids: list[int], sink_factor=10.0
) -> float:
    """The share of kept positions where `feature` fires, counted one chunk at a time."""
    active = kept = 0
    for _, _, acts, keep in _reference_chunks(
        model, sae, layer, chunks, feature, special_ids, sink_factor
    ):
        kept += sum(keep)
        active += sum(1 for a, k in zip(acts, keep, strict=True) if k and a > 0)
    return active / kept


@torch.no_grad()
def histogram_reference(
    model, sae, layer: int, chunks, feature: int, special_ids: list[int], sink_factor=10.0
) -> list[int]:
    """How many kept positions fall in each bin of HISTOGRAM_EDGES where `feature` fires,
    found one position at a time (bin b holds (edge b, edge b+1]; outside, the end bins)."""
    import bisect

    counts = [0] * (len(HISTOGRAM_EDGES) - 1)
    for _, _, acts, keep in _reference_chunks(
        model, sae, layer, chunks, feature, special_ids, sink_factor
    ):
        for a, k in zip(acts, keep, strict=True):
            if k and a > 0:
                b = bisect.bisect_left(HISTOGRAM_EDGES, a) - 1
                counts[min(max(b, 0), len(counts) - 1)] += 1
    return counts


def _reference_chunks(model, sae, layer, chunks, feature, special_ids, sink_factor):
    """Per chunk: (index, token ids, the feature's activation per position with special
    tokens and sinks at 0, which positions were kept)."""
    for c in range(len(chunks)):
        tokens = chunks[c : c + 1]
        hidden = _read_block_output(model, layer, tokens)[0]
        ids = tokens[0].tolist()
        norms = [float(h.float().norm()) for h in hidden]
        ordinary = sorted(n for n, t in zip(norms, ids, strict=True) if t not in special_ids)
        median = ordinary[(len(ordinary) - 1) // 2] if ordinary else 0.0
        keep = [
            t not in special_ids and n <= sink_factor * median
            for n, t in zip(norms, ids, strict=True)
        ]
        latents = sae.encode(hidden.to(sae.W_dec.dtype))[:, feature].tolist()
        yield c, ids, [a if k else 0.0 for a, k in zip(latents, keep, strict=True)], keep


class _Read(Exception):
    pass


def _read_block_output(model, layer: int, tokens: torch.Tensor) -> torch.Tensor:
    """Block `layer`'s output, the forward stopped there (as `hooks.block_output`, kept
    apart so that the reference does not share the fast path's code)."""
    seen = []

    def read(module, inputs, output):
        seen.append(output[0] if isinstance(output, tuple) else output)
        raise _Read

    handle = decoder_layers(model)[layer].register_forward_hook(read)
    try:
        model(tokens)
    except _Read:
        pass
    finally:
        handle.remove()
    return seen[0]


def top_examples_by_feature(
    top: TopExamples, features: list[int], tokenizer
) -> dict[int, list[Example]]:
    """Examples with a positive activation, in the activations schema (token strings are
    vocabulary pieces, as Neuronpedia shows them)."""
    top = TopExamples(*(t.cpu() for t in (top.value, top.chunk, top.token_ids, top.values)))
    result = {}
    for row, feature in enumerate(features):
        examples = []
        for col in range(top.value.shape[1]):
            if top.value[row, col] <= 0:
                break
            keep = top.token_ids[row, col] >= 0
            ids = top.token_ids[row, col][keep].tolist()
            examples.append(
                Example(
                    tokenizer.convert_ids_to_tokens(ids),
                    top.values[row, col][keep].tolist(),
                    ids,
                )
            )
        result[feature] = examples
    return result
