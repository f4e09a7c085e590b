"""FLOP counts of each path, written once.

`saesteer estimate` sizes a run with these counts and the benchmarks (benchmarks/) divide
them by measured time to get the achieved GFLOP/s that the estimate's rates come from;
both must count the same FLOPs, so both import them from here (benchmarks/README.md
writes the formulas out). A matmul is 2 FLOPs per multiply-add. The shapes the counts
read come from a model source's config.json (through saesteer.models), or a table of the
shipped configs' models when it is not on this machine."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from saesteer.errors import ConfigError
from saesteer.models import model_source

# Dense peak FLOP/s (float32, 16-bit) from the vendors' data sheets. PyTorch does float32
# matmuls without TF32 by default, so a float32 run gets the first figure.
GPUS = {
    "A40": (37.4e12, 149.7e12),
    "A100": (19.5e12, 312e12),
    "L40S": (91.6e12, 362e12),
    "H100": (67e12, 989e12),
    "H200": (67e12, 989e12),
}


@dataclass(frozen=True)
class Shapes:
    """The sizes of a decoder that its FLOPs depend on (q, kv: all heads' widths)."""

    layers: int
    d: int
    q: int
    kv: int
    ff: int
    vocab: int

    @classmethod
    def from_hf_config(cls, config: dict) -> Shapes:
        """From a config.json's content (a multimodal model's `text_config`)."""
        config = config.get("text_config") or config
        heads = config["num_attention_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // heads
        return cls(
            layers=config["num_hidden_layers"],
            d=config["hidden_size"],
            q=heads * head_dim,
            kv=(config.get("num_key_value_heads") or heads) * head_dim,
            ff=config["intermediate_size"],
            vocab=config["vocab_size"],
        )

    def first(self, n: int) -> Shapes:
        """The first `n` blocks (and the same head)."""
        return replace(self, layers=n)

    def after(self, layer: int) -> int:
        """How many blocks follow block `layer`."""
        return self.layers - layer - 1

    def blocks(self, n: int, context: float) -> float:
        """FLOPs of one token through `n` blocks attending to `context` positions: the
        q, k, v, o and gate, up, down projections, attention scores and weighted sum."""
        projections = self.d * (2 * self.q + 2 * self.kv) + 3 * self.d * self.ff
        return n * (2 * projections + 4 * context * self.q)

    def head(self) -> float:
        """FLOPs of the LM head at one token."""
        return 2 * self.d * self.vocab

    def token(self, n: int, context: float, head: bool = True) -> float:
        """One token through `n` blocks, then the head if `head`."""
        return self.blocks(n, context) + (self.head() if head else 0.0)

    def steered_feature(self, layer: int, prompt: float) -> float:
        """Output score: one steered token through the blocks after `layer`, attending to
        the prompt, and the head."""
        return self.token(self.after(layer), prompt)

    def sampled_token(self, prompt: float, new: float) -> float:
        """Sampling with a KV cache: one new token through every block, attending to the
        prompt and on average half of the `new` tokens, and the head."""
        return self.token(self.layers, sampling_context(prompt, new))

    def scored_text(self, length: float) -> float:
        """A text of `length` tokens in one forward (perplexity, a proxy rating): each
        token through every block attending to the mean position, and the head."""
        return length * self.token(self.layers, length / 2)


def sampling_context(prompt: float, new: float) -> float:
    """Positions a sampled token attends to on average."""
    return prompt + new / 2


def sae_encode(d: int, d_sae: int) -> float:
    """The whole SAE encoder at one token (TopK needs every latent)."""
    return 2 * d * d_sae


def sae_splice(d: int, d_sae: int) -> float:
    """Encode and decode at one token (an SAE spliced into the forward)."""
    return 2 * sae_encode(d, d_sae)


def sae_train(d: int, d_sae: int) -> float:
    """A training token: encode and decode, the backward twice that."""
    return 3 * sae_splice(d, d_sae)


# Models whose config may not be on this machine (hub models without network), by source.
KNOWN_SHAPES = {
    f"{kind}:{name}": Shapes(layers, d, heads * head_dim, kv_heads * head_dim, ff, vocab)
    for kind, name, layers, d, heads, kv_heads, head_dim, ff, vocab in [
        ("hf", "google/gemma-2-2b", 26, 2304, 8, 4, 256, 9216, 256000),
        ("hf", "google/gemma-2-9b", 42, 3584, 16, 8, 256, 14336, 256000),
        ("hf", "google/gemma-2-9b-it", 42, 3584, 16, 8, 256, 14336, 256000),
        ("embedded", "smollm2-135m-instruct", 30, 576, 9, 3, 64, 1536, 49152),
        ("embedded", "gemma-3-270m", 18, 640, 4, 1, 256, 2048, 262144),
    ]
}


def model_shapes(source: str) -> Shapes:
    """Shapes of a model source: its config.json where this machine has it (not fetched),
    else the table above."""
    config = model_source(source).config_json()
    if config is not None:
        return Shapes.from_hf_config(json.loads(config.read_text()))
    if source in KNOWN_SHAPES:
        return KNOWN_SHAPES[source]
    raise ConfigError(f"model.source: {source!r}: no config.json here and not a known model")
