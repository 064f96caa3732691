"""The self-attention encoder: `embed` + a fixed sinusoidal position table, blocks of
multi-head attention and a feed-forward layer (post-LN or pre-LN), a dense `head` on the
mean over time (docs/design.md). Its scaling sweep varies the sequence length."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bench.models.fields import ACTIVATIONS, choice, fail, number, positive_int
from bench.models.kind import ModelKind, Shapes
from bench.models.numerics import (
    Params,
    activation,
    dense,
    dense_shapes,
    layer_norm,
    matmul_flops,
    positional_encoding,
    softmax,
)

NORMS = ("post", "pre")


@dataclass(frozen=True)
class AttentionSpec:
    """Self-attention encoder: embed + sinusoidal positions, blocks, head on the time mean."""

    kind: ClassVar[str] = "attention"
    in_features: int = 64          # width of the input at each position (features)
    d_model: int = 64              # width of the residual stream (units); must be even
    num_heads: int = 4             # attention heads; each takes d_model / num_heads units
    ff_dim: int = 256              # width of the feed-forward hidden layer (units)
    num_blocks: int = 1            # encoder blocks
    seq_len: int = 64              # T, positions per example used for data and FLOP counts
    out_features: int = 10         # width of the head's output (classes, or targets)
    activation: str = "gelu"       # nonlinearity between the two feed-forward layers
    norm: str = "post"             # "post": h = LN(h + f(h)); "pre": h = h + f(LN(h))
    causal: bool = False           # position t attends only to positions <= t
    layer_norm_eps: float = 1e-5   # added to the variance inside LayerNorm's sqrt

    def __post_init__(self) -> None:
        for name in ("in_features", "d_model", "num_heads", "ff_dim", "num_blocks",
                     "seq_len", "out_features"):
            positive_int(self, name)
        if self.d_model % 2:
            fail("AttentionSpec", "d_model", self.d_model,
                 "an even number (the sinusoidal encoding pairs sin and cos columns)")
        if self.d_model % self.num_heads:
            divisors = [n for n in range(1, self.d_model + 1) if self.d_model % n == 0]
            fail("AttentionSpec", "num_heads", self.num_heads,
                 f"a divisor of d_model={self.d_model}: {divisors}")
        choice(self, "activation", ACTIVATIONS)
        choice(self, "norm", NORMS)
        if not isinstance(self.causal, bool):
            fail("AttentionSpec", "causal", self.causal, "True or False")
        number(self, "layer_norm_eps", 0.0, 1.0, low_open=True)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.seq_len, self.in_features)


def param_shapes(spec: AttentionSpec) -> Shapes:
    d = spec.d_model
    entries = dense_shapes("embed", spec.in_features, d)
    for b in range(spec.num_blocks):
        for proj in ("q", "k", "v", "o"):
            entries += dense_shapes(f"blocks.{b}.attn.{proj}", d, d)
        for norm in ("ln1", "ln2"):
            entries += [(f"blocks.{b}.{norm}.scale", (d,)), (f"blocks.{b}.{norm}.bias", (d,))]
        entries += dense_shapes(f"blocks.{b}.ffn.0", d, spec.ff_dim)
        entries += dense_shapes(f"blocks.{b}.ffn.1", spec.ff_dim, d)
    return entries + dense_shapes("head", d, spec.out_features)


def _attention(spec: AttentionSpec, p: Params, name: str, h: np.ndarray) -> np.ndarray:
    batch, steps, d = h.shape
    heads, hd = spec.num_heads, spec.head_dim

    def split(y: np.ndarray) -> np.ndarray:  # (B, T, d) -> (B, heads, T, hd), contiguous slices
        return y.reshape(batch, steps, heads, hd).transpose(0, 2, 1, 3)

    q, k, v = (split(dense(p, f"{name}.{w}", h)) for w in ("q", "k", "v"))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
    if spec.causal:
        future = np.triu(np.ones((steps, steps), dtype=bool), k=1)
        scores = np.where(future, -np.inf, scores)
    out = softmax(scores) @ v
    out = out.transpose(0, 2, 1, 3).reshape(batch, steps, d)
    return dense(p, f"{name}.o", out)


def forward(spec: AttentionSpec, p: Params, x: np.ndarray) -> np.ndarray:
    h = dense(p, "embed", x) + positional_encoding(x.shape[1], spec.d_model)
    eps = spec.layer_norm_eps
    for b in range(spec.num_blocks):
        blk = f"blocks.{b}"

        def ffn(y: np.ndarray) -> np.ndarray:
            return dense(p, f"{blk}.ffn.1", activation(spec.activation, dense(p, f"{blk}.ffn.0", y)))

        if spec.norm == "post":
            h = layer_norm(p, f"{blk}.ln1", h + _attention(spec, p, f"{blk}.attn", h), eps)
            h = layer_norm(p, f"{blk}.ln2", h + ffn(h), eps)
        else:
            h = h + _attention(spec, p, f"{blk}.attn", layer_norm(p, f"{blk}.ln1", h, eps))
            h = h + ffn(layer_norm(p, f"{blk}.ln2", h, eps))
    return dense(p, "head", h.mean(axis=1))


def forward_flops(spec: AttentionSpec, batch_size: int, seq_len: int | None = None) -> int:
    t, b, d, ff = seq_len or spec.seq_len, batch_size, spec.d_model, spec.ff_dim
    total = matmul_flops(b * t, spec.in_features, d)  # embed
    per_block = (4 * matmul_flops(b * t, d, d)    # q, k, v, o projections
                 + b * matmul_flops(t, d, t)      # scores q k^T per example, all heads together
                 + b * matmul_flops(t, t, d)      # attention weights @ v
                 + matmul_flops(b * t, d, ff) + matmul_flops(b * t, ff, d))  # feed-forward
    return total + spec.num_blocks * per_block + matmul_flops(b, d, spec.out_features)


def saved_elements(spec: AttentionSpec, batch_size: int, seq_len: int | None = None) -> int:
    """The input; per block its input, q, k, v, the attention output, the projection's
    output, two LayerNorm outputs and the feed-forward hidden layer before and after its
    activation, plus every head's scores and weights (T x T each); the head's input."""
    t, b, d = seq_len or spec.seq_len, batch_size, spec.d_model
    per_block = b * t * (8 * d + 2 * spec.ff_dim) + 2 * b * spec.num_heads * t * t
    return b * t * spec.in_features + spec.num_blocks * per_block + b * d


def parity_variants(spec: AttentionSpec) -> list[tuple[str, AttentionSpec]]:
    """Pre-LN and causal masking, each with another activation."""
    return [("pre-relu", dataclasses.replace(spec, norm="pre", activation="relu")),
            ("causal-swish", dataclasses.replace(spec, causal=True, activation="swish"))]


def inert_params(spec: AttentionSpec) -> tuple[str, ...]:
    """The key biases: q_i . b_k is added to every score of query i alike, and softmax
    ignores a shift shared by a row, so their gradient is exactly zero (see
    bench.canonical.inert_params)."""
    return tuple(f"blocks.{b}.attn.k.bias" for b in range(spec.num_blocks))


KIND = ModelKind(
    name="attention", title="self-attention", spec=AttentionSpec, param_shapes=param_shapes,
    forward=forward, forward_flops=forward_flops, saved_elements=saved_elements, scaling_axis="seq_len",
    parity_variants=parity_variants, inert_params=inert_params,
    presets={
        "tiny": (AttentionSpec(in_features=5, d_model=8, num_heads=2, ff_dim=12,
                               num_blocks=2, seq_len=6, out_features=3), 4),
        "small": (AttentionSpec(in_features=64, d_model=64, num_heads=4, ff_dim=256,
                                num_blocks=1, seq_len=64, out_features=10), 32),
        # 1346 GFLOP per training step
        "large": (AttentionSpec(in_features=128, d_model=512, num_heads=8, ff_dim=2048,
                                num_blocks=4, seq_len=256, out_features=10), 64),
    })
