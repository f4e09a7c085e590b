"""The steering intervention every stage shares.

At the last position of block L's output, in every forward call:

    h_last <- h_last + s * a_max * d_i,   a_max = max(encode(h_last)) per sequence,

with d_i = decode(e_i) - decode(0), the feature's effective decoder row (W_dec[i] for
most SAEs; SAE-Lens TopK SAEs that rescale by decoder norm give W_dec[i] / |W_dec[i]|).
The public code computes decode(a + s*a_max*e_i) + (h - decode(encode(h))) instead;
`steer_reference` keeps that form, and the tests show both agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from saesteer.errors import SaeError, UsageError
from saesteer.hooks import edit_block_output


@dataclass(frozen=True)
class SteeringTarget:
    """A loaded layer to steer: the model, its tokenizer, and the SAE whose decoder rows
    steer the output of block `layer` (`saes.load_layer` makes one)."""

    model: Any
    tokenizer: Any
    sae: Any
    layer: int

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


# Normalizations whose decode depends on state left by the last encode call: decode is
# then not one affine map, so the additive form (and a decoder row) does not exist.
_STATEFUL_NORMALIZATIONS = ("constant_norm_rescale", "layer_norm")


def check_steerable(sae) -> None:
    norm = getattr(sae.cfg, "normalize_activations", "none")
    if norm in _STATEFUL_NORMALIZATIONS:
        raise SaeError(
            f"SAE with normalize_activations={norm!r} cannot be steered with a fixed "
            "decoder direction; use an SAE with none/expected_average_only_in"
        )


@torch.no_grad()
def steering_directions(sae, features: Sequence[int], batch_size: int = 256) -> torch.Tensor:
    """Effective decoder rows decode(e_i) - decode(0) of `features`, [n, d_in]."""
    check_steerable(sae)
    index = torch.as_tensor(list(features), dtype=torch.long, device=sae.W_dec.device)
    origin = sae.decode(torch.zeros(1, sae.cfg.d_sae, dtype=sae.dtype, device=index.device))
    rows = []
    for chunk in index.split(batch_size):
        one_hot = torch.zeros(len(chunk), sae.cfg.d_sae, dtype=sae.dtype, device=index.device)
        one_hot[torch.arange(len(chunk)), chunk] = 1.0
        rows.append(sae.decode(one_hot) - origin)
    return torch.cat(rows) if rows else origin[:0]


@torch.no_grad()
def latent_max(sae, last: torch.Tensor) -> torch.Tensor:
    """a_max: the largest SAE latent of each row of `last` [batch, d_in] -> [batch]."""
    return sae.encode(last.to(sae.dtype)).max(dim=-1).values


def add_steering(
    last: torch.Tensor, a_max: torch.Tensor, directions: torch.Tensor, factors: torch.Tensor
) -> torch.Tensor:
    """h + s * a_max * d for rows of `last` [batch, d], added in float32; `a_max` [batch or 1],
    `directions` [batch or 1, d] and `factors` [batch or 1] give each row its own steering."""
    scale = factors.to(last.device, torch.float32) * a_max.to(last.device, torch.float32)
    shift = scale[:, None] * directions.to(last.device, torch.float32)
    return (last.float() + shift).to(last.dtype)


@contextmanager
def steer(
    model, sae, layer: int, directions: torch.Tensor, factors: torch.Tensor | float
) -> Iterator[None]:
    """Steer block `layer`'s output at the last position of every forward call.

    Row b of the batch gets `factors[b] * a_max[b] * directions[b]`; a single direction or
    factor is shared by all rows. With a KV cache this steers the prompt's last token at
    prefill and then each generated token, as in the public code."""
    directions = torch.atleast_2d(directions)
    factors = torch.atleast_1d(torch.as_tensor(factors, dtype=torch.float32))

    def edit(hidden: torch.Tensor) -> torch.Tensor:
        for name, rows in (("directions", directions), ("factors", factors)):
            if rows.shape[0] not in (1, hidden.shape[0]):
                raise UsageError(
                    f"{rows.shape[0]} steering {name} for a batch of {hidden.shape[0]} rows"
                )
        last = hidden[:, -1]
        steered = add_steering(last, latent_max(sae, last), directions, factors)
        return torch.cat([hidden[:, :-1], steered[:, None]], dim=1)

    with edit_block_output(model, layer, edit):
        yield


@contextmanager
def steer_reference(model, sae, layer: int, feature: int, factor: float) -> Iterator[None]:
    """The public code's form, for one feature: decode(a + s*a_max*e_i) plus the SAE error."""

    def edit(hidden: torch.Tensor) -> torch.Tensor:
        last = hidden[:, -1].to(sae.dtype)
        acts = sae.encode(last)
        error = last - sae.decode(acts)
        steered = acts.clone()
        steered[:, feature] += factor * acts.max(dim=-1).values
        new_last = (sae.decode(steered) + error).to(hidden.dtype)
        return torch.cat([hidden[:, :-1], new_last[:, None]], dim=1)

    with edit_block_output(model, layer, edit):
        yield
