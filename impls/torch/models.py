"""torch.nn modules, one per model kind, and their binding to canonical parameters.

BUILDERS maps a kind's name (bench/models) to its module class; each class says where
every canonical parameter lives in it (`bindings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench import adapters, binding, models
from bench.binding import Binding
from bench.reference import positional_encoding
from bench.spec import AttentionSpec, LSTMSpec, MLPSpec, ModelSpec

ACTIVATIONS = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": lambda x: F.gelu(x, approximate="none"),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "swish": F.silu,
    "identity": lambda x: x,
}


@dataclass(frozen=True, eq=False)
class Rows:
    """A binding's slot in torch: rows `rows` of a parameter tensor (all by default)."""

    tensor: torch.Tensor
    rows: slice = field(default_factory=lambda: slice(None))


def _bind(name: str, tensor: torch.Tensor, rows: slice = slice(None),
          transform: binding.Transform = binding.SAME) -> Binding:
    return Binding(name, (Rows(tensor, rows),), transform)


def _dense(name: str, layer: nn.Linear) -> list[Binding]:
    return [_bind(f"{name}.kernel", layer.weight, transform=binding.TRANSPOSED),
            _bind(f"{name}.bias", layer.bias)]



class MLP(nn.Module):
    def __init__(self, spec: MLPSpec):
        super().__init__()
        widths = [spec.in_features, *spec.hidden, spec.out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = ACTIVATIONS[spec.activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)

    def bindings(self) -> list[Binding]:
        return [b for i, layer in enumerate(self.layers) for b in _dense(f"layers.{i}", layer)]


class LSTM(nn.Module):
    def __init__(self, spec: LSTMSpec):
        super().__init__()
        self.lstm = nn.LSTM(spec.in_features, spec.hidden_size, spec.num_layers, batch_first=True)
        self.head = nn.Linear(spec.hidden_size, spec.out_features)
        self.every_step = spec.every_step  # the head reads every step's h, not the last's
        # torch adds two biases (b_ih + b_hh); the canonical layout has one. b_hh stays
        # zero and frozen, else every step would move the sum by twice the bias update.
        _freeze_second_bias(self.lstm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.lstm(x)  # zero initial state
        return self.head(seq if self.every_step else seq[:, -1, :])

    def bindings(self) -> list[Binding]:
        return _recurrent("lstm", self.lstm) + _dense("head", self.head)


def sdpa_block(layer: nn.TransformerEncoderLayer, h: torch.Tensor, causal: bool) -> torch.Tensor:
    """`layer`'s computation on its own parameters, its attention through
    F.scaled_dot_product_attention. The layer's own training path computes attention as
    separate products and a softmax: it took 1.10x this block's time at T=64 and 1.50x at
    T=256 under torch.compile on a 2-core CPU (benchmarks/idioms.py; README)."""
    attn = layer.self_attn
    batch, steps, d = h.shape

    def attend(y: torch.Tensor) -> torch.Tensor:
        qkv = F.linear(y, attn.in_proj_weight, attn.in_proj_bias)  # q, k, v packed as rows
        q, k, v = qkv.view(batch, steps, 3, attn.num_heads, d // attn.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return attn.out_proj(out.transpose(1, 2).reshape(batch, steps, d))

    def ffn(y: torch.Tensor) -> torch.Tensor:
        return layer.linear2(layer.activation(layer.linear1(y)))

    if layer.norm_first:
        h = h + attend(layer.norm1(h))
        return h + ffn(layer.norm2(h))
    h = layer.norm1(h + attend(h))
    return layer.norm2(h + ffn(h))


class Attention(nn.Module):
    """Encoder blocks held as nn.TransformerEncoderLayer (their parameters, norms and
    feed-forward) and computed by `sdpa_block`; attention="encoder_layer" runs the layers'
    own forward instead (the idiom audit's alternative)."""

    def __init__(self, spec: AttentionSpec, attention: str = "sdpa"):
        super().__init__()
        self.embed = nn.Linear(spec.in_features, spec.d_model)
        self.register_buffer("position", torch.from_numpy(
            positional_encoding(spec.seq_len, spec.d_model)), persistent=False)
        activation = "gelu" if spec.activation == "gelu" else ACTIVATIONS[spec.activation]
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                spec.d_model, spec.num_heads, dim_feedforward=spec.ff_dim, dropout=0.0,
                activation=activation, layer_norm_eps=spec.layer_norm_eps, batch_first=True,
                norm_first=spec.norm == "pre")
            for _ in range(spec.num_blocks))
        self.head = nn.Linear(spec.d_model, spec.out_features)
        self.causal = spec.causal
        self.d_model = spec.d_model
        self.attention = attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[1]
        h = self.embed(x) + self.position[:steps]
        if self.attention == "sdpa":
            for block in self.blocks:
                h = sdpa_block(block, h, self.causal)
            return self.head(h.mean(dim=1))
        mask = None
        if self.causal:
            mask = nn.Transformer.generate_square_subsequent_mask(
                steps, device=x.device, dtype=h.dtype)
        for block in self.blocks:
            h = block(h, src_mask=mask, is_causal=self.causal)
        return self.head(h.mean(dim=1))

    def bindings(self) -> list[Binding]:
        d = self.d_model
        out = _dense("embed", self.embed)
        for b, block in enumerate(self.blocks):
            attn = block.self_attn  # q, k, v packed as rows of in_proj_weight
            for i, proj in enumerate(("q", "k", "v")):
                rows = slice(i * d, (i + 1) * d)
                out += [_bind(f"blocks.{b}.attn.{proj}.kernel", attn.in_proj_weight, rows,
                              binding.TRANSPOSED),
                        _bind(f"blocks.{b}.attn.{proj}.bias", attn.in_proj_bias, rows)]
            out += _dense(f"blocks.{b}.attn.o", attn.out_proj)
            for norm, layer in (("ln1", block.norm1), ("ln2", block.norm2)):
                out += [_bind(f"blocks.{b}.{norm}.scale", layer.weight),
                        _bind(f"blocks.{b}.{norm}.bias", layer.bias)]
            out += _dense(f"blocks.{b}.ffn.0", block.linear1)
            out += _dense(f"blocks.{b}.ffn.1", block.linear2)
        return out + _dense("head", self.head)


class RNN(nn.Module):
    def __init__(self, spec: Any):
        super().__init__()
        self.rnn = nn.RNN(spec.in_features, spec.hidden_size, spec.num_layers,
                          nonlinearity="tanh", batch_first=True)
        self.head = nn.Linear(spec.hidden_size, spec.out_features)
        self.every_step = spec.every_step
        _freeze_second_bias(self.rnn)  # as for the LSTM: one canonical bias per layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.rnn(x)  # zero initial state
        return self.head(seq if self.every_step else seq[:, -1, :])

    def bindings(self) -> list[Binding]:
        return _recurrent("rnn", self.rnn) + _dense("head", self.head)


def _freeze_second_bias(rnn: nn.RNNBase) -> None:
    """Zero and freeze torch's second bias (b_hh) of every layer of `rnn`: the canonical
    layout has one bias per layer, which is b_ih here."""
    with torch.no_grad():
        for layer in range(rnn.num_layers):
            getattr(rnn, f"bias_hh_l{layer}").zero_()
            getattr(rnn, f"bias_hh_l{layer}").requires_grad_(False)


def _recurrent(name: str, rnn: nn.RNNBase) -> list[Binding]:
    """`{name}.{l}.kernel`, `recurrent_kernel` and `bias` of a torch recurrent layer, whose
    gate blocks (if any) are already in the canonical order."""
    return [b for layer in range(rnn.num_layers) for b in (
        _bind(f"{name}.{layer}.kernel", getattr(rnn, f"weight_ih_l{layer}"),
              transform=binding.TRANSPOSED),
        _bind(f"{name}.{layer}.recurrent_kernel", getattr(rnn, f"weight_hh_l{layer}"),
              transform=binding.TRANSPOSED),
        _bind(f"{name}.{layer}.bias", getattr(rnn, f"bias_ih_l{layer}")))]


def alignments() -> list[dict[str, str]]:
    """Where torch's layers default differently from the canonical model, and what fwbench
    does about it (the report lists these beside the optimizers')."""
    d, a = adapters.default_of, adapters.aligned
    layer = nn.TransformerEncoderLayer
    return [
        a("LayerNorm epsilon", d(layer, "layer_norm_eps"), "spec.layer_norm_eps"),
        a("TransformerEncoderLayer dropout", d(layer, "dropout"), 0.0),
        a("GELU form", f"approximate={d(nn.GELU, 'approximate')!r}", "exact (erf) for gelu"),
        a("Linear weight layout", "(out, in)", "transposed from canonical (in, out)"),
        a("LSTM and RNN biases", "b_ih + b_hh, both trained", "b_hh frozen at 0"),
        a("MultiheadAttention q, k, v", "packed rows of in_proj_weight", "sliced"),
        a("Encoder block forward", "TransformerEncoderLayer.forward",
          "F.scaled_dot_product_attention on the layer's parameters (faster; idiom audit)"),
    ]


# Model kind (bench/models) -> its module class (which also binds its parameters).
BUILDERS: dict[str, type[nn.Module]] = {"mlp": MLP, "lstm": LSTM, "attention": Attention,
                                         "rnn": RNN}


def bindings(spec: ModelSpec, module: nn.Module) -> list[Binding]:
    """Where each canonical parameter lives in `module`."""
    return module.bindings()


def shape_of(slot: Rows) -> tuple[int, ...]:
    return tuple(slot.tensor[slot.rows].shape)


def store(slot: Rows, value: np.ndarray) -> None:
    with torch.no_grad():
        slot.tensor[slot.rows].copy_(torch.from_numpy(value))


def fetch_value(slot: Rows) -> np.ndarray:
    return slot.tensor.detach()[slot.rows].cpu().numpy()


def fetch_grad(slot: Rows) -> np.ndarray:
    return slot.tensor.grad[slot.rows].cpu().numpy()


def build_module(spec: ModelSpec) -> nn.Module:
    return models.entry(BUILDERS, spec, "impls/torch/models.py BUILDERS")(spec)
