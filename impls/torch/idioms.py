"""The idioms an expert would try for each model in PyTorch (bench/speed/idioms.py times
them against the adapter's and checks their parity)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.speed.idioms import ADAM, Candidate, Variant, adapter_candidate, variant

# One audit process compiles each kind's variants in two dtypes; TorchDynamo's default
# limit of 8 compiled versions per function (the optimizer's step, the blocks' forward)
# would silently send later variants back to eager.
torch._dynamo.config.cache_size_limit = 64


class LoopRNN(nn.Module):
    """An nn.LSTM's or nn.RNN's computation as a Python loop over time steps on its own
    parameters (one matmul for the input, one for the hidden state, per step); under
    torch.compile the loop is unrolled into one graph."""

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        self.rnn = rnn
        self.lstm = isinstance(rnn, nn.LSTM)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        rnn = self.rnn
        for layer in range(rnn.num_layers):
            w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
            bias = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
            inputs = F.linear(x, w_ih, bias)  # every step's input projection at once
            h = x.new_zeros(x.shape[0], rnn.hidden_size)
            c = torch.zeros_like(h)
            outputs = []
            for t in range(x.shape[1]):
                pre = inputs[:, t] + F.linear(h, w_hh)
                if self.lstm:
                    i, f, g, o = pre.chunk(4, dim=1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                else:
                    h = torch.tanh(pre)
                outputs.append(h)
            x = torch.stack(outputs, dim=1)
        return x, None


def _encoder_layers(model: Any) -> None:
    model.module.attention = "encoder_layer"


def _loop(attr: str):
    def change(model: Any) -> None:
        setattr(model.module, attr, LoopRNN(getattr(model.module, attr)))
    return change


def _adam(flag: str):
    """The adapter's compiled model with torch's eager Adam in its `flag` implementation."""
    def make(adapter: Any, spec: Any, params: Any, dtype: str) -> Candidate:
        candidate = adapter_candidate(adapter, spec, params, dtype)
        trainer = candidate.trainer
        trainable = [p for p in trainer.model.module.parameters() if p.requires_grad]
        trainer.optimizer = torch.optim.Adam(
            trainable, lr=ADAM.learning_rate, betas=(ADAM.beta1, ADAM.beta2), eps=ADAM.epsilon,
            **{flag: True})
        trainer.update = trainer.optimizer.step
        return candidate
    return make


def _allow_rnn(adapter: Any, spec: Any, params: Any, dtype: str) -> Candidate:
    """The adapter's step with TorchDynamo tracing into nn.LSTM (allow_rnn) instead of
    breaking the graph around it."""
    candidate = adapter_candidate(adapter, spec, params, dtype)
    trainer, step = candidate.trainer, candidate.trainer.step

    def traced(batch: Any) -> Any:
        with torch._dynamo.config.patch(allow_rnn=True):
            return step(batch)
    trainer.step = traced
    return candidate


def _host_batches(adapter: Any, spec: Any, params: Any, dtype: str) -> Candidate:
    """The adapter's step converting the NumPy batch to tensors every step."""
    candidate = adapter_candidate(adapter, spec, params, dtype)
    trainer, put, step = candidate.trainer, candidate.trainer.put, candidate.trainer.step
    trainer.put = lambda x, y: (np.asarray(x), np.asarray(y))
    trainer.step = lambda batch: step(put(*batch))
    return candidate


VARIANTS: list[Variant] = [
    variant("mlp", "compiled Adam", "torch.compile(module), torch.compile(opt.step)", chosen=True),
    Variant("mlp", "foreach Adam", "torch.compile(module), Adam(foreach=True)", _adam("foreach")),
    Variant("mlp", "fused Adam", "torch.compile(module), Adam(fused=True)", _adam("fused")),
    Variant("mlp", "host batch", "NumPy batch turned into tensors each step", _host_batches),
    variant("attention", "sdpa", "nn.TransformerEncoderLayer's parameters, the block written "
            "with F.scaled_dot_product_attention", chosen=True),
    variant("attention", "encoder layer", "nn.TransformerEncoderLayer(batch_first=True) called "
            "as a module", _encoder_layers),
    Variant("attention", "fused Adam", "the sdpa block, Adam(fused=True)", _adam("fused")),
    variant("lstm", "nn.LSTM", "nn.LSTM under torch.compile (a graph break around it)",
            chosen=True),
    Variant("lstm", "allow_rnn", "nn.LSTM traced by TorchDynamo (config.allow_rnn=True)",
            _allow_rnn),
    variant("lstm", "cell loop", "a Python loop of gate matmuls, unrolled by torch.compile",
            _loop("lstm")),
    variant("rnn", "nn.RNN", "nn.RNN under torch.compile (a graph break around it)", chosen=True),
    variant("rnn", "cell loop", "a Python loop of tanh(x W + h U + b), unrolled by torch.compile",
            _loop("rnn")),
]
